//! Pod-scale benchmark (placeholder).
pub async fn run(_o: crate::Opts) -> i32 {
    2
}
