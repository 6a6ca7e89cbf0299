//! The ops prepare adds around the model, built as NodeDefs and FunctionDefs.
//!
//! Each input gets a string placeholder `earthengine_in_i` (a batch `[-1]` of URL-safe base64
//! TensorProtos, one per instance) and a loop that turns it into the batch the model expects:
//! `StatelessWhile` over the instances, whose body takes instance `i` (`GatherV2`), decodes the
//! base64 (`DecodeBase64`, which reads TensorFlow's web-safe alphabet with or without
//! padding), parses the TensorProto (`ParseTensor`, which accepts `tensor_content` and every
//! typed `*_val` field and checks the dtype) and stores it in a `TensorList`; `TensorListStack`
//! then makes the batch. Each output gets the mirror image: a loop whose body takes instance
//! `i` of the model's output, serializes it (`SerializeTensor`), encodes it (`EncodeBase64`,
//! URL-safe, unpadded) and stores it; the stacked strings are `earthengine_out_j`.
//!
//! This is the graph TensorFlow 2's own `tf.map_fn` builds (functional while loop, tensor
//! lists, `_lower_using_switch_merge` so graph runtimes lower it to plain control flow), with
//! every op from TensorFlow's core op set, so TensorFlow 2.x and TensorFlow Serving load it.

use std::collections::BTreeMap;

use crate::dtype::{DT_BOOL, DT_INT32, DT_STRING, DT_VARIANT};
use crate::proto::tf;
use crate::proto::tf::attr_value::{ListValue, Value};

fn attr(value: Value) -> tf::AttrValue {
    tf::AttrValue { value: Some(value) }
}

fn dtype(t: i32) -> tf::AttrValue {
    attr(Value::Type(t))
}

fn int(i: i64) -> tf::AttrValue {
    attr(Value::I(i))
}

fn boolean(b: bool) -> tf::AttrValue {
    attr(Value::B(b))
}

fn func(name: &str) -> tf::AttrValue {
    attr(Value::Func(tf::NameAttrList {
        name: name.to_string(),
        attr: BTreeMap::new(),
    }))
}

/// A shape; `None` is unknown rank.
fn shape_proto(dims: Option<&[i64]>) -> tf::TensorShapeProto {
    match dims {
        None => tf::TensorShapeProto {
            dim: Vec::new(),
            unknown_rank: true,
        },
        Some(dims) => tf::TensorShapeProto {
            dim: dims
                .iter()
                .map(|&size| tf::tensor_shape_proto::Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        },
    }
}

/// A node; `inputs` are tensor names (top level: `node` / `node:k`; in functions: argument
/// names or `node:output_arg:k`).
pub(crate) fn node(
    name: &str,
    op: &str,
    inputs: &[&str],
    attrs: Vec<(&str, tf::AttrValue)>,
) -> tf::NodeDef {
    tf::NodeDef {
        name: name.to_string(),
        op: op.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        device: String::new(),
        attr: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

/// An int32 constant: a scalar, or a vector of `values` when `vector` is set.
fn const_i32(name: &str, values: &[i32], vector: bool) -> tf::NodeDef {
    let dims: Vec<i64> = if vector {
        vec![values.len() as i64]
    } else {
        Vec::new()
    };
    let tensor = tf::TensorProto {
        dtype: DT_INT32,
        tensor_shape: Some(shape_proto(Some(&dims))),
        int_val: values.to_vec(),
    };
    node(
        name,
        "Const",
        &[],
        vec![
            ("dtype", dtype(DT_INT32)),
            ("value", attr(Value::Tensor(tensor))),
        ],
    )
}

/// A string placeholder of shape `[-1]`.
pub(crate) fn string_batch_placeholder(name: &str) -> tf::NodeDef {
    node(
        name,
        "Placeholder",
        &[],
        vec![
            ("dtype", dtype(DT_STRING)),
            ("shape", attr(Value::Shape(shape_proto(Some(&[-1]))))),
        ],
    )
}

/// `Identity(input)` named `name`, of element type `t`, on `device`.
pub(crate) fn identity(name: &str, input: &str, t: i32, device: &str) -> tf::NodeDef {
    let mut n = node(name, "Identity", &[input], vec![("T", dtype(t))]);
    n.device = device.to_string();
    n
}

/// A new loop: its top-level nodes and its two functions.
pub(crate) struct Loop {
    pub nodes: Vec<tf::NodeDef>,
    pub functions: Vec<tf::FunctionDef>,
    /// The tensor holding the stacked result.
    pub result: String,
}

fn arg(name: &str, t: i32) -> tf::op_def::ArgDef {
    tf::op_def::ArgDef {
        name: name.to_string(),
        r#type: t,
    }
}

/// The condition function of a loop over `(i, n, items, acc)`: `i < n`.
fn cond_function(name: &str, items_type: i32) -> tf::FunctionDef {
    tf::FunctionDef {
        signature: Some(tf::OpDef {
            name: name.to_string(),
            input_arg: vec![
                arg("i", DT_INT32),
                arg("n", DT_INT32),
                arg("items", items_type),
                arg("acc", DT_VARIANT),
            ],
            output_arg: vec![arg("more", DT_BOOL)],
            is_stateful: false,
        }),
        attr: BTreeMap::new(),
        node_def: vec![node(
            "less",
            "Less",
            &["i", "n"],
            vec![("T", dtype(DT_INT32))],
        )],
        ret: [("more".to_string(), "less:z:0".to_string())].into(),
    }
}

/// The body of a loop over `(i, n, items, acc)`: `acc[i] = f(items[i])`, `i + 1`, where the
/// nodes of `f` read `item:output:0` and leave their result in `result` (of type
/// `result_type`).
fn body_function(
    name: &str,
    items_type: i32,
    result_type: i32,
    f: Vec<tf::NodeDef>,
    result: &str,
) -> tf::FunctionDef {
    let mut nodes = vec![
        const_i32("axis", &[0], false),
        node(
            "item",
            "GatherV2",
            &["items", "i", "axis:output:0"],
            vec![
                ("Tparams", dtype(items_type)),
                ("Tindices", dtype(DT_INT32)),
                ("Taxis", dtype(DT_INT32)),
                ("batch_dims", int(0)),
            ],
        ),
    ];
    nodes.extend(f);
    nodes.push(node(
        "store",
        "TensorListSetItem",
        &["acc", "i", result],
        vec![("element_dtype", dtype(result_type))],
    ));
    nodes.push(const_i32("one", &[1], false));
    nodes.push(node(
        "next",
        "AddV2",
        &["i", "one:output:0"],
        vec![("T", dtype(DT_INT32))],
    ));
    let io = vec![
        arg("i", DT_INT32),
        arg("n", DT_INT32),
        arg("items", items_type),
        arg("acc", DT_VARIANT),
    ];
    tf::FunctionDef {
        signature: Some(tf::OpDef {
            name: name.to_string(),
            input_arg: io.clone(),
            output_arg: io
                .iter()
                .map(|a| arg(&format!("{}_out", a.name), a.r#type))
                .collect(),
            is_stateful: false,
        }),
        attr: BTreeMap::new(),
        node_def: nodes,
        ret: [
            ("i_out", "next:z:0"),
            ("n_out", "n"),
            ("items_out", "items"),
            ("acc_out", "store:output_handle:0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    }
}

/// The top-level nodes of a loop named `prefix` over the first dimension of `items` (of type
/// `items_type`, `n` instances given by tensor `count`), collecting `result_type` elements of
/// shape `element_shape` (`None`: unknown).
#[allow(clippy::too_many_arguments)]
fn loop_nodes(
    prefix: &str,
    items: &str,
    items_type: i32,
    items_shape: Option<&[i64]>,
    count: &str,
    result_type: i32,
    element_shape: Option<&[i64]>,
    cond: &str,
    body: &str,
) -> (Vec<tf::NodeDef>, String) {
    let name = |s: &str| format!("{prefix}/{s}");
    let element_shape_node = match element_shape {
        Some(dims) => {
            let dims: Vec<i32> = dims
                .iter()
                .map(|&d| d.clamp(-1, i32::MAX as i64) as i32)
                .collect();
            const_i32(&name("element_shape"), &dims, true)
        }
        None => const_i32(&name("element_shape"), &[-1], false),
    };
    let nodes = vec![
        const_i32(&name("start"), &[0], false),
        element_shape_node,
        node(
            &name("reserve"),
            "TensorListReserve",
            &[&name("element_shape"), count],
            vec![
                ("element_dtype", dtype(result_type)),
                ("shape_type", dtype(DT_INT32)),
            ],
        ),
        node(
            &name("while"),
            "StatelessWhile",
            &[&name("start"), count, items, &name("reserve")],
            vec![
                (
                    "T",
                    attr(Value::List(ListValue {
                        r#type: vec![DT_INT32, DT_INT32, items_type, DT_VARIANT],
                        ..Default::default()
                    })),
                ),
                ("cond", func(cond)),
                ("body", func(body)),
                (
                    "output_shapes",
                    attr(Value::List(ListValue {
                        shape: vec![
                            shape_proto(Some(&[])),
                            shape_proto(Some(&[])),
                            shape_proto(items_shape),
                            shape_proto(Some(&[])),
                        ],
                        ..Default::default()
                    })),
                ),
                ("parallel_iterations", int(10)),
                ("_lower_using_switch_merge", boolean(true)),
            ],
        ),
        node(
            &name("stack"),
            "TensorListStack",
            &[&format!("{prefix}/while:3"), &name("element_shape")],
            vec![
                ("element_dtype", dtype(result_type)),
                ("num_elements", int(-1)),
            ],
        ),
    ];
    (nodes, name("stack"))
}

/// The loop decoding the batch of strings `placeholder` into a batch of `dtype` tensors of
/// instance shape `instance_shape`, named under `prefix`, its functions named
/// `{function_prefix}_cond` / `_body`.
pub(crate) fn decode_loop(
    prefix: &str,
    function_prefix: &str,
    placeholder: &str,
    dtype_code: i32,
    instance_shape: Option<&[i64]>,
) -> Loop {
    let cond = format!("{function_prefix}_cond");
    let body = format!("{function_prefix}_body");
    let count = format!("{prefix}/size");
    let mut nodes = vec![node(
        &count,
        "Size",
        &[placeholder],
        vec![("T", dtype(DT_STRING)), ("out_type", dtype(DT_INT32))],
    )];
    let (loop_nodes, result) = loop_nodes(
        prefix,
        placeholder,
        DT_STRING,
        Some(&[-1]),
        &count,
        dtype_code,
        instance_shape,
        &cond,
        &body,
    );
    nodes.extend(loop_nodes);
    let f = vec![
        node("decoded", "DecodeBase64", &["item:output:0"], vec![]),
        node(
            "parsed",
            "ParseTensor",
            &["decoded:output:0"],
            vec![("out_type", dtype(dtype_code))],
        ),
    ];
    Loop {
        nodes,
        functions: vec![
            cond_function(&cond, DT_STRING),
            body_function(&body, DT_STRING, dtype_code, f, "parsed:output:0"),
        ],
        result,
    }
}

/// The loop encoding each instance of `tensor` (of type `dtype_code`) as a URL-safe base64
/// serialized TensorProto, named under `prefix`, its functions `{function_prefix}_cond` /
/// `_body`.
pub(crate) fn encode_loop(
    prefix: &str,
    function_prefix: &str,
    tensor: &str,
    dtype_code: i32,
) -> Loop {
    let cond = format!("{function_prefix}_cond");
    let body = format!("{function_prefix}_body");
    let name = |s: &str| format!("{prefix}/{s}");
    let count = name("size");
    let mut nodes = vec![
        node(
            &name("shape"),
            "Shape",
            &[tensor],
            vec![("T", dtype(dtype_code)), ("out_type", dtype(DT_INT32))],
        ),
        const_i32(&name("first"), &[0], false),
        node(
            &count,
            "GatherV2",
            &[&name("shape"), &name("first"), &name("first")],
            vec![
                ("Tparams", dtype(DT_INT32)),
                ("Tindices", dtype(DT_INT32)),
                ("Taxis", dtype(DT_INT32)),
                ("batch_dims", int(0)),
            ],
        ),
    ];
    let (loop_nodes, result) = loop_nodes(
        prefix,
        tensor,
        dtype_code,
        None,
        &count,
        DT_STRING,
        Some(&[]),
        &cond,
        &body,
    );
    nodes.extend(loop_nodes);
    let f = vec![
        node(
            "serialized",
            "SerializeTensor",
            &["item:output:0"],
            vec![("T", dtype(dtype_code))],
        ),
        node(
            "encoded",
            "EncodeBase64",
            &["serialized:serialized:0"],
            vec![("pad", boolean(false))],
        ),
    ];
    Loop {
        nodes,
        functions: vec![
            cond_function(&cond, dtype_code),
            body_function(&body, dtype_code, DT_STRING, f, "encoded:output:0"),
        ],
        result,
    }
}
