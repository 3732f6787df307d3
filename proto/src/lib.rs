//! Patto's protobuf contracts, compiled from `proto/patto/**` at build time.
//!
//! One module per package (`patto_proto::<theme>::v1`), generated into OUT_DIR and included here, plus
//! [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, with comments, that services serve through gRPC
//! reflection and that the gateway composes its GraphQL schema from.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Encoded `google.protobuf.FileDescriptorSet` of every Patto contract and its imports, with source info.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/patto_descriptor.bin"));

macro_rules! package {
    ($(#[$doc:meta])* $name:ident, $pkg:literal) => {
        $(#[$doc])*
        pub mod $name {
            /// Version 1 of the package.
            pub mod v1 {
                tonic::include_proto!($pkg);
            }
        }
    };
}

package!(
    /// GraphQL mapping options (`patto.graphql.v1`).
    graphql, "patto.graphql.v1"
);
package!(
    /// Shared types and the indicators service (`patto.common.v1`).
    common, "patto.common.v1"
);
package!(
    /// Culture and leisure (`patto.culture.v1`).
    culture, "patto.culture.v1"
);
package!(
    /// Social assistance (`patto.social.v1`).
    social, "patto.social.v1"
);
package!(
    /// Building and cadastre (`patto.building.v1`).
    building, "patto.building.v1"
);
package!(
    /// Work and training (`patto.employment.v1`).
    employment, "patto.employment.v1"
);
package!(
    /// Local taxes (`patto.taxes.v1`).
    taxes, "patto.taxes.v1"
);
package!(
    /// Environment and territory (`patto.environment.v1`).
    environment, "patto.environment.v1"
);
package!(
    /// Public works (`patto.publicworks.v1`).
    publicworks, "patto.publicworks.v1"
);
