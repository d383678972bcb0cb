//! The methods compared, one folder each, every one implementing
//! [`Method`](crate::method::Method):
//!
//! - [`tfidf`]: TF-IDF + logistic regression, the classic baseline;
//! - [`knn`]: sentence embeddings + K-nearest neighbours;
//! - [`finetune`]: a small language model fine-tuned as a classifier;
//! - [`llm`]: a generic LLM, prompted, its answer constrained to a schema.

pub mod finetune;
pub mod knn;
pub mod llm;
pub mod tfidf;

use crate::method::Method;
use crate::paths::Profile;

/// Every method at the profile's defaults, in the order `slm-vs-llm all`
/// runs them. Adding a method is a module implementing `Method` and one line here.
pub fn registry(profile: Profile) -> Vec<Box<dyn Method>> {
    vec![
        Box::new(knn::Knn::default()),
        Box::new(finetune::Finetune::for_profile(profile)),
        Box::new(tfidf::TfidfBaseline::default()),
        Box::new(llm::Llm::for_profile(profile)),
    ]
}
