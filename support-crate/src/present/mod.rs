//! What a reader sees: tables ([`tables`]), the
//! comparison across methods ([`compare`]'s charts, [`report`]'s table), the
//! cost at volume ([`break_even`]) and on one machine ([`costs`]), the learning curve ([`curve`]) and the
//! cascades ([`cascade`]), the exploration of the data ([`eda`]) and
//! inline display in the notebooks ([`notebook`]).

pub mod break_even;
pub mod cascade;
pub mod compare;
pub mod costs;
pub mod curve;
pub mod eda;
pub mod notebook;
pub mod report;
pub mod tables;

/// "1 seed", "3 seeds": how many seeds a figure rests on.
pub fn seeds(n: usize) -> String {
    if n == 1 {
        "1 seed".to_string()
    } else {
        format!("{n} seeds")
    }
}

/// "a", "a and b", "a, b and c".
pub fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
