//! A valid component that targets some other world: upload validation must refuse it.

wit_bindgen::generate!({ path: "wit", world: "wrong" });

struct Wrong;

impl Guest for Wrong {
    fn hello() -> String {
        "not a funnel plugin".to_string()
    }
}

export!(Wrong);
