//! Statement fragments with their own `$1…$n`, chained into one PostgreSQL statement (`WITH … AS (…)`).
//!
//! Several set-based writes of one transaction become one round trip: each fragment is written
//! with placeholders from `$1`, and [`chain`] renumbers them after the fragments before it. The
//! hot-path texts contain no `$` other than placeholders (no dollar quoting).

use sea_orm::{DbBackend, Statement, Value};

/// One statement's text (placeholders from `$1`) and its values.
#[derive(Debug, Clone)]
pub struct Sql {
    pub text: String,
    pub values: Vec<Value>,
}

impl Sql {
    pub fn new(text: impl Into<String>, values: Vec<Value>) -> Self {
        Self { text: text.into(), values }
    }

    pub fn statement(self) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, self.text, self.values)
    }
}

/// `text` with every placeholder `$n` moved to `$(n + by)`.
fn shift(text: &str, by: usize) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(&(_, d)) = chars.peek() {
            if !d.is_ascii_digit() {
                break;
            }
            digits.push(d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

/// One statement running `ctes` (named, each a data-modifying statement, in order) and then
/// `last`, whose result is the statement's. Every part sees the same snapshot; each runs once.
pub fn chain(ctes: Vec<(&str, Sql)>, last: Sql) -> Sql {
    let mut text = String::new();
    let mut values = Vec::new();
    for (i, (name, part)) in ctes.into_iter().enumerate() {
        text.push_str(if i == 0 { "WITH " } else { ", " });
        text.push_str(name);
        text.push_str(" AS (");
        text.push_str(&shift(&part.text, values.len()));
        text.push(')');
        values.extend(part.values);
    }
    text.push(' ');
    text.push_str(&shift(&last.text, values.len()));
    values.extend(last.values);
    Sql { text, values }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_after_the_parts_before() {
        let a = Sql::new("INSERT INTO a SELECT $1, $2", vec![1i32.into(), 2i32.into()]);
        let b = Sql::new("UPDATE b SET x = $1 WHERE y = $10", (0..10).map(Value::from).collect());
        let c = Sql::new("SELECT $1::int", vec![3i32.into()]);
        let s = chain(vec![("a", a), ("b", b)], c);
        assert_eq!(
            s.text,
            "WITH a AS (INSERT INTO a SELECT $1, $2), b AS (UPDATE b SET x = $3 WHERE y = $12) SELECT $13::int"
        );
        assert_eq!(s.values.len(), 13);
    }

    #[test]
    fn no_parts_before_leave_the_last_as_it_is() {
        let s = chain(vec![], Sql::new("SELECT $1, '$'", vec![1i32.into()]));
        assert_eq!(s.text, " SELECT $1, '$'");
    }
}
