//! provkit
