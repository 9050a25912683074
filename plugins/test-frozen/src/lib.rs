//! Test only: a tag filter generated straight from the released, frozen
//! `wit/released/0.1.0/regsync-plugin.wit` (not through the SDK), as a
//! component built when 0.1.0 was current would be. Every later regsync must
//! keep loading it. Keeps the tags that start with `keep`.

#![allow(missing_docs)]

wit_bindgen::generate!({
    path: "../../wit/released/0.1.0/regsync-plugin.wit",
    world: "tag-filter-plugin",
});

struct Frozen;

impl exports::regsync::plugin::tag_filter::Guest for Frozen {
    fn filter_tags(_repo: String, tags: Vec<String>) -> Result<Vec<String>, String> {
        Ok(tags.into_iter().filter(|t| t.starts_with("keep")).collect())
    }
}

export!(Frozen);
