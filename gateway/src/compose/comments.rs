//! Proto comments, read from the descriptors' source info, become GraphQL descriptions.

use std::collections::HashMap;

use prost_reflect::{DescriptorPool, FileDescriptor};

/// Leading comments of every element of a pool, by file and source path.
#[derive(Debug, Default, Clone)]
pub struct Comments(HashMap<(String, Vec<i32>), String>);

impl Comments {
    /// Collects the comments of every file in `pool`.
    pub fn of(pool: &DescriptorPool) -> Self {
        let mut map = HashMap::new();
        for file in pool.files() {
            if let Some(info) = &file.file_descriptor_proto().source_code_info {
                for loc in &info.location {
                    let text = loc.leading_comments().trim();
                    if !text.is_empty() {
                        let cleaned: Vec<&str> = text.lines().map(str::trim).collect();
                        map.insert(
                            (file.name().to_owned(), loc.path.clone()),
                            cleaned.join("\n"),
                        );
                    }
                }
            }
        }
        Self(map)
    }

    /// The comment of the element at `path` in `file`.
    pub fn get(&self, file: &FileDescriptor, path: &[i32]) -> Option<&str> {
        self.0
            .get(&(file.name().to_owned(), path.to_vec()))
            .map(String::as_str)
    }
}
