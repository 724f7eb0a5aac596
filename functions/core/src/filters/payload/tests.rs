use super::*;
use proptest::prelude::*;
use serde_json::json;

fn filter(v: Value) -> PayloadFilter {
    PayloadFilter::parse("filters.payload", &v).unwrap()
}

/// `f` wrapped by `wrap`, unless that makes it too deep.
fn wrapped(f: &PayloadFilter, wrap: impl Fn(Value) -> Value) -> Option<PayloadFilter> {
    (f.to_json() != json!({})).then(|| PayloadFilter::parse("filters.payload", &wrap(f.to_json())).ok()).flatten()
}

fn error_of(v: Value) -> String {
    PayloadFilter::parse("filters.payload", &v).unwrap_err().message
}

/// One data object every row of the operator table is checked against.
fn data() -> Value {
    json!({
        "host": "web-1.prod.acme.example",
        "port": 443,
        "risk": 7.5,
        "tags": ["pci", "edge"],
        "owner": {"team": "red", "oncall": null},
        "labels": {"env": "prod"},
        "version": "2.10.0"
    })
}

#[test]
fn operator_table() {
    let cases = [
        (json!({"host": "web-1.prod.acme.example"}), true),
        (json!({"port": 443.0}), true), // numbers compare by value
        (json!({"labels": {"env": "prod"}}), true),
        (json!({"labels": {"$eq": {"env": "prod"}}}), true), // an object literal compares whole
        (json!({"labels": {"$eq": {}}}), false),
        (json!({"tags": ["pci", "edge"]}), true),
        (json!({"tags": ["edge", "pci"]}), false), // arrays compare whole, in order
        (json!({"host": {"$neq": "db-1"}}), true),
        (json!({"port": {"$gt": 442, "$lte": 443}}), true),
        (json!({"port": {"$gte": 444}}), false),
        (json!({"risk": {"$lt": 8}}), true),
        (json!({"version": {"$gt": "2.9"}}), false), // strings compare lexically
        (json!({"port": {"$gt": "1"}}), false),      // a number never orders against a string
        (json!({"host": {"$in": ["db-1", "web-1.prod.acme.example"]}}), true),
        (json!({"host": {"$nin": ["db-1"]}}), true),
        (json!({"host": {"$startsWith": "web-", "$endsWith": ".example"}}), true),
        (json!({"host": {"$contains": "prod"}}), true),
        (json!({"tags": {"$contains": "pci"}}), true),
        (json!({"tags": {"$contains": "pc"}}), false), // an element, not a substring of one
        (json!({"owner": {"oncall": {"$exist": true}}}), true),
        (json!({"owner": {"team": "red", "manager": {"$exist": false}}}), true),
        (json!({"$or": [{"port": 80}, {"port": 443}]}), true),
        (json!({"$and": [{"port": 443}, {"host": {"$startsWith": "db"}}]}), false),
        (json!({"$not": {"labels": {"env": "dev"}}}), true),
        (json!({"host": {"$not": {"$endsWith": ".test"}}}), true),
        // A missing field: false, except $exist: false, $neq and $nin.
        (json!({"missing": {"$eq": 1}}), false),
        (json!({"missing": {"$gt": 1}}), false),
        (json!({"missing": {"$in": [1]}}), false),
        (json!({"missing": {"$startsWith": ""}}), false),
        (json!({"missing": {"$contains": "a"}}), false),
        (json!({"missing": {"$exist": true}}), false),
        (json!({"missing": {"$exist": false}}), true),
        (json!({"missing": {"$neq": 1}}), true),
        (json!({"missing": {"$nin": [1]}}), true),
        (json!({"host": {"deeper": {"$exist": false}}}), true), // a field of a string is missing
        (json!({"owner": {"team": {"$in": []}}}), false),
        (json!({}), true),
    ];
    for (i, (f, want)) in cases.into_iter().enumerate() {
        assert_eq!(filter(f.clone()).matches(&data()), want, "case {i}: {f}");
    }
}

#[test]
fn invalid_filters_name_their_exact_path() {
    let deep = json!({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}});
    let cases = [
        (json!({"host": {"$startsWith": 1}}), "filters.payload.host.$startsWith: must be a string"),
        (json!({"host": {"$regex": "x"}}), "filters.payload.host.$regex: unknown operator"),
        (
            json!({"$or": [{"a": 1}, {"b": {"$gt": true}}]}),
            "filters.payload.$or[1].b.$gt: must be a number or a string",
        ),
        (json!({"$or": []}), "filters.payload.$or: must be a non-empty array of filter objects"),
        (json!({"$and": [1]}), "filters.payload.$and[0]: must be a filter object"),
        (json!({"$not": [1]}), "filters.payload.$not: must be a filter object"),
        (json!({"a": {"$in": "x"}}), "filters.payload.a.$in: must be an array"),
        (json!({"a": {"$exist": "yes"}}), "filters.payload.a.$exist: must be a boolean"),
        (json!({"a": {}}), "filters.payload.a: must not be an empty object"),
        (json!({"": 1}), "filters.payload: field names must not be empty"),
        (json!([1]), "filters.payload: must be an object"),
        (deep, "filters.payload.a.b.c.d.e: nesting deeper than 5 levels"),
        (json!({"a": "x".repeat(MAX_BYTES)}), "filters.payload: must be at most 4096 bytes of JSON"),
    ];
    for (f, want) in cases {
        let got = error_of(f.clone());
        assert!(got.starts_with(want), "{f}: {got}");
    }
    let err = PayloadFilter::parse("filters.payload", &json!({"host": {"$startsWith": 1}})).unwrap_err();
    assert_eq!(err.field, "filters.payload.host.$startsWith");
    // Five levels are allowed.
    assert!(filter(json!({"a": {"b": {"c": {"d": {"e": 1}}}}})).matches(&json!({"a": {"b": {"c": {"d": {"e": 1}}}}})));
}

#[test]
fn stored_and_served_as_the_json_given_in_canonical_key_order() {
    let f = filter(json!({"b": {"$lt": 2, "$gt": 1}, "a": "x", "$or": [{"c": true}]}));
    assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"$or":[{"c":true}],"a":"x","b":{"$gt":1,"$lt":2}}"#);
    let back: PayloadFilter = serde_json::from_value(f.to_json()).unwrap();
    assert_eq!(back, f);
    let bad: Result<PayloadFilter, _> = serde_json::from_value(json!({"a": {"$nope": 1}}));
    assert!(bad.unwrap_err().to_string().contains("filters.payload.a.$nope: unknown operator"));
}

/// JSON values of a few kinds, small enough that equal ones come up often.
fn literal() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..4).prop_map(|n| json!(n)),
        prop_oneof![Just(json!(1.0)), Just(json!(2.5)), Just(json!(-0.5))],
        "[ab]{0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[ab]", inner, 0..3).prop_map(|m| json!(m)),
        ]
    })
}

/// Data objects over the same few field names the filters use.
fn data_value() -> impl Strategy<Value = Value> {
    proptest::collection::btree_map("[abc]", literal(), 0..4).prop_map(|m| json!(m))
}

/// An operator with an operand of any type: valid or not, parsing must never panic.
fn operator() -> impl Strategy<Value = (String, Value)> {
    let names =
        ["$eq", "$neq", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$startsWith", "$endsWith", "$contains", "$exist"];
    (proptest::sample::select(names.to_vec()), literal()).prop_map(|(n, v)| (n.to_owned(), v))
}

/// Filter-shaped JSON: fields with literals or operator objects, combinators, some nonsense.
fn filter_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        ("[abc]", literal()).prop_map(|(k, v)| json!({ k: v })),
        ("[abc]", operator()).prop_map(|(k, (op, v))| json!({ k: { op: v } })),
        ("[abc]", "\\$[a-z]{1,3}").prop_map(|(k, op)| json!({ k: { op: 1 } })),
    ];
    leaf.prop_recursive(6, 24, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"$or": v})),
            proptest::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"$and": v})),
            inner.clone().prop_map(|v| json!({"$not": v})),
            ("[abc]", inner).prop_map(|(k, v)| json!({ k: v })),
        ]
    })
}

fn valid_filter() -> impl Strategy<Value = PayloadFilter> {
    filter_json().prop_filter_map("invalid filter", |v| PayloadFilter::parse("filters.payload", &v).ok())
}

proptest! {
    #[test]
    fn random_filters_never_panic(f in filter_json(), d in data_value()) {
        if let Ok(parsed) = PayloadFilter::parse("filters.payload", &f) {
            let _ = parsed.matches(&d);
        }
    }

    #[test]
    fn parse_serialize_parse_round_trips(f in valid_filter()) {
        let text = serde_json::to_string(&f).unwrap();
        let back: PayloadFilter = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&back, &f);
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn not_inverts(f in valid_filter(), d in data_value()) {
        if let Some(not) = wrapped(&f, |v| json!({"$not": v})) {
            prop_assert_eq!(not.matches(&d), !f.matches(&d));
        }
    }

    #[test]
    fn and_of_one_is_that_filter_and_or_of_one_too(f in valid_filter(), d in data_value()) {
        if let Some(and) = wrapped(&f, |v| json!({"$and": [v]})) {
            prop_assert_eq!(and.matches(&d), f.matches(&d));
        }
        if let Some(or) = wrapped(&f, |v| json!({"$or": [v]})) {
            prop_assert_eq!(or.matches(&d), f.matches(&d));
        }
    }

    #[test]
    fn in_of_one_is_eq_and_nin_of_one_is_neq(x in literal(), d in data_value(), k in "[abc]") {
        let field = |op: &str, v: Value| filter(json!({ k.clone(): { op: v } })).matches(&d);
        prop_assert_eq!(field("$in", json!([x.clone()])), field("$eq", x.clone()));
        prop_assert_eq!(field("$nin", json!([x.clone()])), field("$neq", x.clone()));
        prop_assert_eq!(field("$neq", x.clone()), !field("$eq", x));
    }

    #[test]
    fn a_literal_is_eq_and_exist_splits_every_field(x in literal(), d in data_value(), k in "[abc]") {
        if !x.is_object() {
            prop_assert_eq!(filter(json!({ k.clone(): x.clone() })).matches(&d), filter(json!({ k.clone(): {"$eq": x} })).matches(&d));
        }
        let exists = filter(json!({ k.clone(): {"$exist": true} })).matches(&d);
        prop_assert_eq!(exists, d.get(&k).is_some());
        prop_assert_eq!(filter(json!({ k: {"$exist": false} })).matches(&d), !exists);
    }

    #[test]
    fn gte_is_gt_or_eq_for_numbers_and_strings(a in literal(), b in prop_oneof![(-3i64..4).prop_map(|n| json!(n)), "[ab]{0,2}".prop_map(Value::String)]) {
        let d = json!({"x": a});
        let holds = |op: &str| filter(json!({"x": { op: b.clone() }})).matches(&d);
        prop_assert_eq!(holds("$gte"), holds("$gt") || (holds("$eq") && (a.is_number() || a.is_string())));
        prop_assert_eq!(holds("$lte"), holds("$lt") || (holds("$eq") && (a.is_number() || a.is_string())));
        prop_assert!(!(holds("$gt") && holds("$lt")));
    }
}
