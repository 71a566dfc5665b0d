//! The service's own vocabulary, known to every layer and knowing none: ARM resource ids that
//! parse (so nothing builds a URL or a query from an unparsed string) and the arguments of the
//! job kinds, as the API validates them and the queue stores them.
pub mod args;
pub mod ids;
mod image;

pub use args::{CheckArgs, ImportArgs, ImportSourceArgs, KubeletIdentityArgs, PairArgs, RegistryRef};
pub use ids::{
    ClusterId, IdError, RegistryId, RegistryName, ResourceId, RoleAssignmentId, SubscriptionId, UserAssignedIdentityId,
};
pub use image::valid_image;
