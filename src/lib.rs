//! bigdata-lab: a lambda-architecture lab (Kafka, HDFS, Spark, Airflow, PostgreSQL) on one laptop.
//!
//! The binary `lab` (src/main.rs) is a thin CLI over these modules.

pub mod bundle;
pub mod config;
pub mod dataset;
pub mod demo;
pub mod doctor;
pub mod embedded_lab;
pub mod kafka_tools;
pub mod lesson;
pub mod pg;
pub mod pipeline;
pub mod probes;
pub mod progress;
pub mod runtime;
pub mod stack;
pub mod storage;
pub mod time_arg;
pub mod tui;
