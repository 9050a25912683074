//! Test only: a tag filter built against `regsync:plugin@0.9.0`, a version no
//! regsync has released, as a plugin written for a newer regsync would be.
//! Loading it must fail with an error naming that version.

#![allow(missing_docs)]

wit_bindgen::generate!({
    inline: "
        package regsync:plugin@0.9.0;
        interface host {
            log: func(message: string);
        }
        interface tag-filter {
            filter-tags: func(repo: string, tags: list<string>) -> result<list<string>, string>;
        }
        world tag-filter-plugin {
            import host;
            export tag-filter;
        }
    ",
    world: "tag-filter-plugin",
});

struct Future;

impl exports::regsync::plugin::tag_filter::Guest for Future {
    fn filter_tags(_repo: String, tags: Vec<String>) -> Result<Vec<String>, String> {
        regsync::plugin::host::log("from the future");
        Ok(tags)
    }
}

export!(Future);
