//! What a query costs before anything walks it whole.
//!
//! A fragment may spread another fragment twice, and that one the next twice: a 1 KB query of
//! 26 such fragments selects 2^26 fields. async-graphql's validation expands every spread as it
//! walks (its complexity and field-merging rules), so such a query used to be refused as too
//! complex only after minutes of CPU. [`selected_fields`] counts the same expansion in one pass
//! over the document, each fragment's size counted once and remembered, and the schema's
//! [`FieldBound`] extension refuses the query right after parsing, before anything else walks
//! it.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Request, ServerError, ServerResult};

use crate::error::Code;

/// The fields a query may select once its fragments are expanded in place. The standard
/// introspection query selects about 250; the console's largest page about 150.
pub const MAX_SELECTED_FIELDS: usize = 2_000;

/// The price of `planHistory`, which reads the plan's events after the cursor from the log,
/// against the schema's complexity limit of [`crate::MAX_COMPLEXITY`] (a plain field costs 1).
pub const STREAM_READ: usize = 200;

/// The price of `reminderSettings`: it loads the party's stream (short, and usually cached).
pub const PARTY_FOLD: usize = 50;

/// The price of `planAsOf`: it reads the plan's events up to an instant and folds them, with
/// no cache to help (about 20 ms for a plan in follow-up), so a query holds at most 19.
pub const PLAN_FOLD: usize = 1_000;

/// What `Plan.steps` is priced as holding: a plan from a template has 10 to 20 steps and may
/// grow to 200, each resolved in memory. A page of 50 plans with a few step fields fits.
pub const STEPS_PER_PLAN: usize = 30;

/// How deep selections and fragment spreads may nest, counted together.
const MAX_NESTING: usize = 64;

/// Why a document is refused before validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooCostly {
    #[error(
        "this query selects more than {MAX_SELECTED_FIELDS} fields once its fragments are \
         expanded: ask for fewer fields, or split it into several requests"
    )]
    TooManyFields,
    #[error(
        "this query nests fields and fragments more than {MAX_NESTING} deep: spread fragments \
         in fewer levels"
    )]
    TooDeep,
    #[error("fragment {0} spreads itself (directly or through other fragments): remove the cycle")]
    Cycle(String),
}

/// The fields of a document's operations and fragments once every spread is expanded, and how
/// many selections were looked at to learn it (each at most once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expansion {
    pub fields: usize,
    pub selections_walked: usize,
}

/// Counts what `document` selects with its fragments expanded, stopping at `limit` fields.
pub fn selected_fields(
    document: &ExecutableDocument,
    limit: usize,
) -> Result<Expansion, TooCostly> {
    let mut count = Counter {
        document,
        limit,
        fragments: HashMap::new(),
        walked: 0,
    };
    let mut fields = 0usize;
    for (_, operation) in document.operations.iter() {
        fields += count
            .selection_set(&operation.node.selection_set.node, 0)?
            .fields;
        count.within(fields)?;
    }
    // Validation walks fragment definitions too, used or not.
    for name in document.fragments.keys() {
        fields += count.fragment(name, 0)?.fields;
        count.within(fields)?;
    }
    Ok(Expansion {
        fields,
        selections_walked: count.walked,
    })
}

enum Fragment {
    Counting,
    Counted(Size),
}

/// What a selection set expands to: its fields, and how deep it nests below itself.
#[derive(Clone, Copy, Default)]
struct Size {
    fields: usize,
    height: usize,
}

struct Counter<'d> {
    document: &'d ExecutableDocument,
    limit: usize,
    fragments: HashMap<&'d Name, Fragment>,
    walked: usize,
}

impl<'d> Counter<'d> {
    fn within(&self, fields: usize) -> Result<(), TooCostly> {
        if fields > self.limit {
            Err(TooCostly::TooManyFields)
        } else {
            Ok(())
        }
    }

    /// The size of `set`, found at nesting `depth`; a fragment's size is remembered, with its
    /// height, so a chain counted from its middle still counts its whole depth.
    fn selection_set(&mut self, set: &'d SelectionSet, depth: usize) -> Result<Size, TooCostly> {
        if depth > MAX_NESTING {
            return Err(TooCostly::TooDeep);
        }
        let mut size = Size::default();
        for selection in &set.items {
            self.walked += 1;
            let (fields, below) = match &selection.node {
                Selection::Field(field) => {
                    let inner = self.selection_set(&field.node.selection_set.node, depth + 1)?;
                    (1 + inner.fields, inner.height + 1)
                }
                Selection::InlineFragment(inline) => {
                    let inner = self.selection_set(&inline.node.selection_set.node, depth + 1)?;
                    (inner.fields, inner.height + 1)
                }
                Selection::FragmentSpread(spread) => {
                    let inner = self.fragment(&spread.node.fragment_name.node, depth + 1)?;
                    (inner.fields, inner.height + 1)
                }
            };
            if depth + below > MAX_NESTING {
                return Err(TooCostly::TooDeep);
            }
            size.fields += fields;
            size.height = size.height.max(below);
            self.within(size.fields)?;
        }
        Ok(size)
    }

    fn fragment(&mut self, name: &'d Name, depth: usize) -> Result<Size, TooCostly> {
        match self.fragments.get(name) {
            Some(Fragment::Counted(size)) => return Ok(*size),
            Some(Fragment::Counting) => return Err(TooCostly::Cycle(name.to_string())),
            None => {}
        }
        // An unknown fragment selects nothing here; validation reports it.
        let Some(definition) = self.document.fragments.get(name) else {
            return Ok(Size::default());
        };
        self.fragments.insert(name, Fragment::Counting);
        let size = self.selection_set(&definition.node.selection_set.node, depth)?;
        self.fragments.insert(name, Fragment::Counted(size));
        Ok(size)
    }
}

/// Refuses, right after parsing, a document that selects more than [`MAX_SELECTED_FIELDS`]
/// fields once expanded (code `VALIDATION`), so validation never walks it.
pub(crate) struct FieldBound;

impl ExtensionFactory for FieldBound {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldBound)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for FieldBound {
    /// Before async-graphql's own parse step: that step already walks every expansion (to
    /// check the nesting depth). The document parsed here is handed on, not parsed again.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // A query that does not parse is left to the parse step, which reports why.
        if let Ok(document) = request.parsed_query() {
            if let Err(refused) = selected_fields(document, MAX_SELECTED_FIELDS) {
                metrics::counter!("homeward_graphql_refused_before_validation_total").increment(1);
                let mut error = ServerError::new(refused.to_string(), None);
                error
                    .extensions
                    .get_or_insert_with(Default::default)
                    .set("code", Code::Validation.as_str());
                return Err(error);
            }
        }
        next.run(ctx, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    /// Fragment `F0` selects `id`; each `F(n+1)` spreads `Fn` twice.
    fn doubling(levels: usize) -> String {
        let mut query = format!("{{ me {{ ...F{levels} }} }}\nfragment F0 on Party {{ id }}\n");
        for n in 1..=levels {
            let below = n - 1;
            query.push_str(&format!(
                "fragment F{n} on Party {{ ...F{below} ...F{below} }}\n"
            ));
        }
        query
    }

    #[test]
    fn fields_are_counted_as_expanded() {
        let doc = parse_query("{ me { id name } tasks { edges { node { key } } } }").unwrap();
        assert_eq!(selected_fields(&doc, 100).unwrap().fields, 7);
        // F0 (1) + F1 (2) + F2 (4), and the operation selects me + F2.
        let doc = parse_query(doubling(2)).unwrap();
        assert_eq!(
            selected_fields(&doc, 100).unwrap().fields,
            1 + 4 + 1 + 2 + 4
        );
    }

    #[test]
    fn a_fragment_doubling_query_is_refused_after_walking_each_selection_once() {
        let query = doubling(26);
        assert!(query.len() < 1_500, "{} bytes", query.len());
        let doc = parse_query(&query).unwrap();
        assert_eq!(
            selected_fields(&doc, MAX_SELECTED_FIELDS),
            Err(TooCostly::TooManyFields)
        );
        // Without a limit it counts 2^26 fields in about one step per selection written.
        let whole = selected_fields(&doc, usize::MAX).unwrap();
        assert!(whole.fields > 1 << 26, "{whole:?}");
        assert!(whole.selections_walked < 100, "{whole:?}");
    }

    #[test]
    fn cycles_and_deep_chains_are_refused() {
        let doc = parse_query(
            "{ me { ...A } } fragment A on Party { ...B } fragment B on Party { ...A }",
        )
        .unwrap();
        assert!(matches!(
            selected_fields(&doc, MAX_SELECTED_FIELDS),
            Err(TooCostly::Cycle(_))
        ));
        let mut chain = String::from("{ me { ...C0 } }\n");
        for n in 0..200 {
            chain.push_str(&format!("fragment C{n} on Party {{ ...C{} }}\n", n + 1));
        }
        chain.push_str("fragment C200 on Party { id }\n");
        let doc = parse_query(&chain).unwrap();
        assert_eq!(
            selected_fields(&doc, MAX_SELECTED_FIELDS),
            Err(TooCostly::TooDeep)
        );
        // The same chain spread by no operation: counted from wherever the map starts, its
        // remembered heights still add up.
        let unused = chain.replace("{ me { ...C0 } }", "{ me { id } }");
        let doc = parse_query(&unused).unwrap();
        assert_eq!(
            selected_fields(&doc, MAX_SELECTED_FIELDS),
            Err(TooCostly::TooDeep)
        );
    }

    #[test]
    fn a_thousand_aliases_fit_the_field_bound_and_are_left_to_their_price() {
        let mut query = String::from("{");
        for n in 0..1000 {
            query.push_str(&format!(" p{n}: me {{ id }}"));
        }
        query.push('}');
        let doc = parse_query(&query).unwrap();
        assert_eq!(
            selected_fields(&doc, MAX_SELECTED_FIELDS).unwrap().fields,
            2000
        );
    }
}
