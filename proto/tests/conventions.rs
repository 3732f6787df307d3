//! Enforces the contract conventions over the compiled descriptor set, so a proto that breaks them
//! fails `make test` instead of surfacing later as a bad GraphQL schema or a confusing gRPC API:
//! package = directory with a version suffix, buf STANDARD naming, and a comment on every element
//! (comments become the GraphQL documentation).

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use prost_types::source_code_info::Location;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};

fn patto_files() -> Vec<FileDescriptorProto> {
    let set = FileDescriptorSet::decode(patto_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    set.file
        .into_iter()
        .filter(|f| f.name().starts_with("patto/"))
        .collect()
}

fn is_upper_camel(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_lower_snake(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Collects human-readable problems instead of stopping at the first, so one run lists them all.
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }
    fn assert_clean(self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{what}: {} problem(s)\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

#[test]
fn package_matches_directory_and_is_versioned() {
    let mut report = Report::default();
    for file in patto_files() {
        let dir = file.name().rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let package = file.package();
        report.check(dir.replace('/', ".") == package, || {
            format!(
                "{}: package `{package}` must equal its directory `{dir}`",
                file.name()
            )
        });
        let version = package.rsplit('.').next().unwrap_or("");
        report.check(
            version.len() > 1
                && version.starts_with('v')
                && version[1..].chars().all(|c| c.is_ascii_digit()),
            || {
                format!(
                    "{}: package `{package}` must end with a version like `.v1`",
                    file.name()
                )
            },
        );
    }
    report.assert_clean("package layout");
}

fn check_enum(report: &mut Report, file: &str, e: &EnumDescriptorProto) {
    let prefix = format!("{}_", upper_snake(e.name()));
    let zero = e.value.iter().find(|v| v.number() == 0);
    report.check(
        zero.is_some_and(|v| v.name() == format!("{prefix}UNSPECIFIED")),
        || {
            format!(
                "{file}: enum {} must have zero value {prefix}UNSPECIFIED",
                e.name()
            )
        },
    );
    for v in &e.value {
        report.check(v.name().starts_with(&prefix), || {
            format!("{file}: enum value {} must start with {prefix}", v.name())
        });
    }
}

fn check_message(report: &mut Report, file: &str, m: &DescriptorProto) {
    report.check(is_upper_camel(m.name()), || {
        format!("{file}: message {} must be UpperCamelCase", m.name())
    });
    for f in &m.field {
        report.check(is_lower_snake(f.name()), || {
            format!(
                "{file}: field {}.{} must be lower_snake_case",
                m.name(),
                f.name()
            )
        });
    }
    for e in &m.enum_type {
        check_enum(report, file, e);
    }
    for nested in m
        .nested_type
        .iter()
        .filter(|n| !n.options.as_ref().is_some_and(|o| o.map_entry()))
    {
        check_message(report, file, nested);
    }
}

#[test]
fn buf_standard_naming() {
    let mut report = Report::default();
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in patto_files() {
        let name = file.name().to_owned();
        for m in &file.message_type {
            check_message(&mut report, &name, m);
        }
        for e in &file.enum_type {
            check_enum(&mut report, &name, e);
        }
        for s in &file.service {
            report.check(
                s.name().ends_with("Service") && is_upper_camel(s.name()),
                || {
                    format!(
                        "{name}: service {} must be UpperCamelCase ending in Service",
                        s.name()
                    )
                },
            );
            for m in &s.method {
                let rpc = m.name();
                report.check(is_upper_camel(rpc), || {
                    format!("{name}: rpc {rpc} must be UpperCamelCase")
                });
                let request = m.input_type().rsplit('.').next().unwrap_or("");
                let response = m.output_type().rsplit('.').next().unwrap_or("");
                report.check(request == format!("{rpc}Request"), || {
                    format!("{name}: rpc {rpc} must take {rpc}Request, takes {request}")
                });
                report.check(response == format!("{rpc}Response"), || {
                    format!("{name}: rpc {rpc} must return {rpc}Response, returns {response}")
                });
                for t in [m.input_type(), m.output_type()] {
                    used.entry(t.to_owned())
                        .or_default()
                        .push(format!("{}.{rpc}", s.name()));
                }
            }
        }
    }
    for (message, rpcs) in used {
        report.check(rpcs.len() == 1, || {
            format!("{message} is used by several RPCs: {rpcs:?}")
        });
    }
    report.assert_clean("buf STANDARD naming");
}

/// Source-info paths (field numbers of descriptor.proto) of every element that needs a comment.
fn element_paths(file: &FileDescriptorProto) -> Vec<(Vec<i32>, String)> {
    fn message(
        out: &mut Vec<(Vec<i32>, String)>,
        path: Vec<i32>,
        m: &DescriptorProto,
        scope: &str,
    ) {
        let name = format!("{scope}{}", m.name());
        out.push((path.clone(), format!("message {name}")));
        for (i, f) in m.field.iter().enumerate() {
            out.push((
                [&path[..], &[2, i as i32]].concat(),
                format!("field {name}.{}", f.name()),
            ));
        }
        for (i, n) in m.nested_type.iter().enumerate() {
            if !n.options.as_ref().is_some_and(|o| o.map_entry()) {
                message(
                    out,
                    [&path[..], &[3, i as i32]].concat(),
                    n,
                    &format!("{name}."),
                );
            }
        }
        for (i, e) in m.enum_type.iter().enumerate() {
            enumeration(
                out,
                [&path[..], &[4, i as i32]].concat(),
                e,
                &format!("{name}."),
            );
        }
        for (i, o) in m.oneof_decl.iter().enumerate() {
            // Synthetic oneofs of proto3 `optional` fields have no source of their own.
            if !o.name().starts_with('_') {
                out.push((
                    [&path[..], &[8, i as i32]].concat(),
                    format!("oneof {name}.{}", o.name()),
                ));
            }
        }
    }
    fn enumeration(
        out: &mut Vec<(Vec<i32>, String)>,
        path: Vec<i32>,
        e: &EnumDescriptorProto,
        scope: &str,
    ) {
        let name = format!("{scope}{}", e.name());
        out.push((path.clone(), format!("enum {name}")));
        for (i, v) in e.value.iter().enumerate() {
            out.push((
                [&path[..], &[2, i as i32]].concat(),
                format!("enum value {}", v.name()),
            ));
        }
    }
    let mut out = Vec::new();
    for (i, m) in file.message_type.iter().enumerate() {
        message(&mut out, vec![4, i as i32], m, "");
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        enumeration(&mut out, vec![5, i as i32], e, "");
    }
    for (i, s) in file.service.iter().enumerate() {
        out.push((vec![6, i as i32], format!("service {}", s.name())));
        for (j, m) in s.method.iter().enumerate() {
            out.push((
                vec![6, i as i32, 2, j as i32],
                format!("rpc {}.{}", s.name(), m.name()),
            ));
        }
    }
    for (i, f) in file.extension.iter().enumerate() {
        out.push((vec![7, i as i32], format!("extension {}", f.name())));
    }
    out
}

#[test]
fn every_element_is_commented() {
    let mut report = Report::default();
    for file in patto_files() {
        let commented: BTreeSet<Vec<i32>> = file
            .source_code_info
            .iter()
            .flat_map(|info| info.location.iter())
            .filter(|l: &&Location| l.leading_comments().trim().len() > 2)
            .map(|l| l.path.clone())
            .collect();
        for (path, element) in element_paths(&file) {
            report.check(commented.contains(&path), || {
                format!("{}: {element} has no leading comment", file.name())
            });
        }
    }
    report.assert_clean("documentation");
}

#[test]
fn every_theme_package_is_compiled() {
    let packages: BTreeSet<String> = patto_files()
        .iter()
        .map(|f| f.package().to_owned())
        .collect();
    for theme in [
        "social",
        "building",
        "culture",
        "employment",
        "taxes",
        "environment",
        "publicworks",
    ] {
        assert!(
            packages.contains(&format!("patto.{theme}.v1")),
            "missing package patto.{theme}.v1 in {packages:?}"
        );
    }
}
