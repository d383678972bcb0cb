//! Studies built on the [`Method`](crate::method::Method) seam: each fits
//! methods many times, or combines fitted ones, to answer a question a
//! single run cannot.
//!
//! - [`curve`]: accuracy against the number of labels, per method;
//! - [`cascade`]: a cheap method answers when it is sure, another the rest;
//! - [`scored_items`]: which test items a curve's points answered, and how.

pub mod cascade;
pub mod curve;
pub mod scored_items;
