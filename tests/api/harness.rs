//! The test harness itself: a passing test leaves no database behind.

use crate::helpers::*;

#[tokio::test]
async fn a_finished_test_app_drops_its_database() {
    let app = spawn_app().await;
    let name = app
        .pool
        .connect_options()
        .get_database()
        .unwrap()
        .to_owned();
    let admin = sqlx::PgPool::connect(&format!("{}/postgres", base_database_url()))
        .await
        .unwrap();
    let exists = |admin: sqlx::PgPool, name: String| async move {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        )
        .bind(name)
        .fetch_one(&admin)
        .await
        .unwrap()
    };
    assert!(exists(admin.clone(), name.clone()).await);
    app.fund("u1", "EUR", "10.00").await;
    drop(app);
    assert!(!exists(admin, name.clone()).await, "{name} is still there");
}
