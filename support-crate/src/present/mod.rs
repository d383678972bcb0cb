//! What a reader sees: charts ([`plot`]), tables ([`tables`]), the
//! comparison across methods ([`report`]), the exploration of the data
//! ([`eda`]) and inline display in the notebooks ([`notebook`]).

pub mod eda;
pub mod notebook;
pub mod plot;
pub mod report;
pub mod tables;
