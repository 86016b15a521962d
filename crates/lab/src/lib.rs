//! The rebalance lab: runs a scenario (scale-out, scale-in, crash, rolling
//! restart, partition increase, slow member, new group) with real clients
//! against Cohort or any Kafka-compatible broker, records what every member's
//! application received and owned, and turns it into figures, an SVG timeline
//! and an HTML report.

pub mod broker;
pub mod cli;
pub mod measure;
pub mod member;
pub mod probe;
pub mod report;
pub mod run;
pub mod svg;
