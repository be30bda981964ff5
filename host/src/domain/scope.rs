//! [`Scope`]: which of a producer's checkouts a binding serves — all of them, one product's, or
//! one plan of one product — so that "a plan without its product" cannot be said. Coupons
//! exist at a product-and-plan scope only.
//!
//! The store keeps a scope as two text columns with `''` for "any" (the schema of migration
//! 0001); that spelling stays inside the store (`store::bindings`).

/// Which checkouts of a producer a binding serves. The most specific binding wins: a plan's
/// over its product's over the producer's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Every checkout of the producer.
    Producer,
    /// The checkouts of one product, any plan.
    Product(String),
    /// The checkouts of one plan of one product.
    ProductPlan(String, String),
}

/// A scope that cannot be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("a plan binding also names its product_id")]
    PlanWithoutProduct,
}

impl Scope {
    /// The scope of a product and plan as a form or a request gives them: blank is absent.
    pub fn new(product: Option<&str>, plan: Option<&str>) -> Result<Scope, ScopeError> {
        let given = |v: Option<&str>| v.filter(|v| !v.trim().is_empty()).map(str::to_string);
        match (given(product), given(plan)) {
            (None, None) => Ok(Scope::Producer),
            (Some(product), None) => Ok(Scope::Product(product)),
            (Some(product), Some(plan)) => Ok(Scope::ProductPlan(product, plan)),
            (None, Some(_)) => Err(ScopeError::PlanWithoutProduct),
        }
    }

    /// The product it names, if any.
    pub fn product_id(&self) -> Option<&str> {
        match self {
            Scope::Producer => None,
            Scope::Product(product) | Scope::ProductPlan(product, _) => Some(product),
        }
    }

    /// The plan it names, if any.
    pub fn plan_id(&self) -> Option<&str> {
        match self {
            Scope::ProductPlan(_, plan) => Some(plan),
            _ => None,
        }
    }

    /// Its product and plan when it names both: the scope coupons live at.
    pub fn product_plan(&self) -> Option<(&str, &str)> {
        match self {
            Scope::ProductPlan(product, plan) => Some((product, plan)),
            _ => None,
        }
    }
}

/// As the API has always shown a scope: `product_id` and `plan_id`, `null` for "any".
impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Scope", 2)?;
        s.serialize_field("product_id", &self.product_id())?;
        s.serialize_field("plan_id", &self.plan_id())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_are_absent_and_a_plan_needs_its_product() {
        assert_eq!(Scope::new(None, None), Ok(Scope::Producer));
        assert_eq!(Scope::new(Some(" "), Some("")), Ok(Scope::Producer));
        assert_eq!(Scope::new(Some("p1"), None), Ok(Scope::Product("p1".into())));
        assert_eq!(Scope::new(Some("p1"), Some("q")), Ok(Scope::ProductPlan("p1".into(), "q".into())));
        assert_eq!(Scope::new(None, Some("q")), Err(ScopeError::PlanWithoutProduct));
        assert_eq!(Scope::new(Some(""), Some("q")), Err(ScopeError::PlanWithoutProduct));
    }

    #[test]
    fn it_shows_as_product_id_and_plan_id() {
        let shown = |s: Scope| serde_json::to_value(s).ok();
        assert_eq!(shown(Scope::Producer), Some(serde_json::json!({"product_id": null, "plan_id": null})));
        assert_eq!(shown(Scope::Product("p1".into())), Some(serde_json::json!({"product_id": "p1", "plan_id": null})));
        assert_eq!(Scope::ProductPlan("p".into(), "q".into()).product_plan(), Some(("p", "q")));
        assert_eq!(Scope::Product("p".into()).product_plan(), None);
    }
}
