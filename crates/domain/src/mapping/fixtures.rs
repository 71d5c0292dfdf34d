//! Samples and generators shared by the mapping tests: real webhook bodies (Stripe,
//! Shopify) and arbitrary JSON.

use proptest::prelude::*;
use serde_json::{Number, Value, json};

use super::MappingSpec;

pub(super) fn stripe_checkout() -> Value {
    json!({
        "id": "evt_1NG8Du2eZvKYlo2CUI79vXWy",
        "object": "event",
        "api_version": "2023-10-16",
        "created": 1_686_089_970,
        "type": "checkout.session.completed",
        "livemode": false,
        "data": {
            "object": {
                "id": "cs_test_a1b2c3",
                "object": "checkout.session",
                "amount_total": 2000,
                "currency": "usd",
                "client_reference_id": "usr_8a3f2d",
                "customer": "cus_NffrFeUfNV2Hib",
                "customer_email": null,
                "customer_details": {
                    "email": "Jenny.Rosen@Example.com",
                    "name": "Jenny Rosen",
                    "phone": null,
                    "address": {"country": "US", "postal_code": "94103"}
                },
                "metadata": {"plan": "pro", "user-id": "42"},
                "mode": "subscription",
                "payment_status": "paid",
                "status": "complete"
            }
        },
        "request": {"id": null, "idempotency_key": null}
    })
}

pub(super) fn shopify_order() -> Value {
    json!({
        "id": 820_982_911_946_154_508_u64,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "email": "jon@example.com",
        "created_at": "2021-12-31T19:00:00-05:00",
        "currency": "USD",
        "total_price": "403.00",
        "name": "#9999",
        "phone": null,
        "user_id": null,
        "customer": {
            "id": 115_310_627_314_723_954_u64,
            "email": "john@example.com",
            "first_name": "John",
            "last_name": "Smith",
            "phone": "+1 (613) 555-1111",
            "tags": ""
        },
        "line_items": [
            {"id": 866_550_311_766_439_020_u64, "sku": "IPOD2008PINK", "title": "IPod Nano - 8GB", "quantity": 1, "price": "199.00"},
            {"id": 141_249_953_214_522_974_u64, "sku": null, "title": "IPod Nano - 8GB", "quantity": 1, "price": "199.00"}
        ],
        "shipping_address": {"first_name": "Steve", "phone": "555-625-1199"}
    })
}

pub(super) fn spec(value: Value) -> MappingSpec {
    serde_json::from_value(value).expect("spec deserializes")
}

pub(super) fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "email",
            "id",
            "type",
            "event",
            "customer",
            "user",
            "user_id",
            "phone",
            "data",
            "items",
            "created_at",
            "name",
            "first_name",
            "0",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,6}",
    ]
}

pub(super) fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        prop_oneof![
            Just("a@example.com".to_owned()),
            Just("+1 555 010 9999".to_owned()),
            Just("2026-01-31T12:00:00Z".to_owned()),
            "[0-9]{1,20}",
            "\\PC{0,12}",
            any::<String>(),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}
