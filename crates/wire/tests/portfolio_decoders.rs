//! The portfolio as the data service sends it (JSON or Protobuf) and as the
//! worker turns it into the engine's starting values: both codecs agree, no
//! input makes a decoder panic, and whatever the engine accepts is finite.

use proptest::prelude::*;
use prost::Message;
use wire::{Asset, Portfolio};
use wire::{Encoding, decode};

fn amount() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0f64..1e7,
        Just(f64::MAX),
        Just(-1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        any::<f64>(),
    ]
}

fn asset() -> impl Strategy<Value = Asset> {
    (
        any::<i64>(),
        "[A-Z]{0,6}",
        prop_oneof![
            Just("us_equity".to_string()),
            Just("bonds".to_string()),
            Just("cash".to_string()),
            "[a-z_]{0,12}"
        ],
        amount(),
        amount(),
        amount(),
    )
        .prop_map(
            |(asset_id, symbol, asset_class, quantity, price, market_value)| Asset {
                asset_id,
                symbol,
                asset_class,
                quantity,
                price,
                market_value,
            },
        )
}

fn portfolio() -> impl Strategy<Value = Portfolio> {
    (
        "[A-Z0-9-]{0,12}",
        any::<i64>(),
        proptest::collection::vec(asset(), 0..24),
        any::<i64>(),
    )
        .prop_map(
            |(customer_id, version, assets, change_position)| Portfolio {
                customer_id,
                name: "n".into(),
                base_currency: "USD".into(),
                as_of: "2026-01-01".into(),
                version,
                assets,
                change_position,
            },
        )
}

fn starting_values(portfolio: &Portfolio) -> Result<[f64; engine::K], engine::Error> {
    engine::initial_values_by_class(
        portfolio
            .assets
            .iter()
            .map(|asset| (asset.asset_class.as_str(), asset.market_value)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn protobuf_round_trips_and_the_engine_accepts_only_finite_values(portfolio in portfolio()) {
        let decoded: Portfolio = decode(Encoding::Protobuf, &portfolio.encode_to_vec()).unwrap();
        // NaN is never equal to itself: compare the encodings instead.
        prop_assert_eq!(decoded.encode_to_vec(), portfolio.encode_to_vec());
        if let Ok(values) = starting_values(&decoded) {
            prop_assert!(values.iter().all(|value| value.is_finite() && *value >= 0.0), "{:?}", values);
        }
    }

    #[test]
    fn json_and_protobuf_agree_on_every_finite_portfolio(mut portfolio in portfolio()) {
        // JSON has no spelling for NaN or infinity.
        for asset in &mut portfolio.assets {
            for amount in [&mut asset.quantity, &mut asset.price, &mut asset.market_value] {
                if !amount.is_finite() {
                    *amount = 0.0;
                }
            }
        }
        let json = serde_json::to_vec(&portfolio).unwrap();
        let from_json: Portfolio = decode(Encoding::Json, &json).unwrap();
        let from_protobuf: Portfolio = decode(Encoding::Protobuf, &portfolio.encode_to_vec()).unwrap();
        prop_assert_eq!(&from_json, &from_protobuf);
        prop_assert_eq!(
            starting_values(&from_json).map_err(|error| error.to_string()),
            starting_values(&from_protobuf).map_err(|error| error.to_string())
        );
    }

    #[test]
    fn no_byte_string_makes_a_portfolio_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            if let Ok(portfolio) = decode::<Portfolio>(encoding, &bytes) {
                let _ = starting_values(&portfolio);
            }
        }
    }
}

#[test]
fn holdings_whose_sum_overflows_are_refused() {
    let huge = Asset {
        asset_class: "us_equity".into(),
        market_value: f64::MAX,
        ..Default::default()
    };
    let portfolio = Portfolio {
        assets: vec![huge.clone(), huge],
        ..Default::default()
    };
    let error = starting_values(&portfolio).unwrap_err();
    assert!(error.to_string().contains("market_value"), "{error}");
}
