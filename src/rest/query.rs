//! The list query of `GET /v2/admin/secrets` (OData style: `$top`,
//! `$skip`, `$count`) and the page it selects. `count` is always the number
//! of secrets in scope, as the SDKs document it and page with it; `$count`
//! is accepted (and checked) for clients that send it. Pure.

use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::model::{List, Summary};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub top: Option<usize>,
    pub skip: usize,
}

/// The query parameters as sent (checked by [`parse`], so strings here;
/// the document gives their real types); others are ignored.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Raw {
    /// At most this many secrets in `resources`.
    #[serde(rename = "$top")]
    #[param(value_type = Option<u64>, minimum = 0, example = 10)]
    top: Option<String>,
    /// Leave out the first this many (by Kubernetes name).
    #[serde(rename = "$skip")]
    #[param(value_type = Option<u64>, minimum = 0, example = 10)]
    skip: Option<String>,
    /// Accepted and checked; `count` is the total in scope either way (AI
    /// Core: the page size unless `true`).
    #[serde(rename = "$count")]
    #[param(value_type = Option<bool>)]
    count: Option<String>,
}

/// Parses the raw query string (form encoding, via serde_urlencoded).
pub fn parse(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let raw: Raw = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|_| ApiError::bad_request("the query string is not valid form encoding"))?;
    let number = |key: &str, value: Option<String>| {
        value
            .map(|v| v.parse::<usize>())
            .transpose()
            .map_err(|_| ApiError::bad_request(format!("{key} must be a non-negative integer")))
    };
    if !matches!(raw.count.as_deref(), None | Some("true" | "false")) {
        return Err(ApiError::bad_request("$count must be true or false"));
    }
    Ok(ListQuery {
        top: number("$top", raw.top)?,
        skip: number("$skip", raw.skip)?.unwrap_or(0),
    })
}

/// The page of `items` that `query` asks for; `count` is all of them.
pub fn page(items: Vec<Summary>, query: &ListQuery) -> List {
    let count = items.len();
    let resources = items
        .into_iter()
        .skip(query.skip)
        .take(query.top.unwrap_or(usize::MAX))
        .collect();
    List { count, resources }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &List) -> Vec<&str> {
        list.resources.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn parses_the_list_query() {
        assert_eq!(parse(None), Ok(ListQuery::default()));
        assert_eq!(
            parse(Some("$top=2&%24skip=1&$count=true&other=x")),
            Ok(ListQuery {
                top: Some(2),
                skip: 1
            })
        );
        assert_eq!(parse(Some("$count=false")), Ok(ListQuery::default()));
        for bad in ["$top=-1", "$skip=a", "$count=yes", "$top=%zz"] {
            assert!(parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn count_is_the_total_whatever_the_page() {
        let items = |n: usize| {
            (0..n)
                .map(|i| Summary {
                    name: format!("s{i}"),
                    created_at: None,
                    labels: Vec::new(),
                })
                .collect::<Vec<_>>()
        };
        for (query, want) in [
            ("", vec!["s0", "s1", "s2", "s3", "s4"]),
            ("$top=2&$skip=1&$count=true", vec!["s1", "s2"]),
            ("$top=2&$skip=1", vec!["s1", "s2"]),
            ("$top=1&$count=false", vec!["s0"]),
            ("$skip=4", vec!["s4"]),
            ("$skip=9", vec![]),
            ("$top=0", vec![]),
        ] {
            let list = page(items(5), &parse(Some(query)).expect("query"));
            assert_eq!(list.count, 5, "{query}");
            assert_eq!(names(&list), want, "{query}");
        }
        assert_eq!(page(Vec::new(), &ListQuery::default()).count, 0);
    }
}
