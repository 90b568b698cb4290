//! Paths into a definition (`tasks[3].retry.multiplier`) and the sorted list of problems found.

use super::ValidationError;

/// Top-level fields of a definition, in declaration order (the order errors sort in).
#[derive(Debug, Clone, Copy)]
pub(super) enum Top {
    Name,
    Description,
    Tasks,
    Settings,
    /// The definition as a whole (its size).
    Definition,
}

/// Fields of a task, in declaration order.
#[derive(Debug, Clone, Copy)]
pub(super) enum TaskField {
    Name,
    TaskType,
    DependsOn,
    Retry,
    Timeout,
    Description,
}

/// Fields of a retry spec, in declaration order.
#[derive(Debug, Clone, Copy)]
pub(super) enum RetryField {
    MaxAttempts,
    InitialBackoff,
    Multiplier,
    MaxBackoff,
}

/// Fields of the settings, in declaration order.
#[derive(Debug, Clone, Copy)]
pub(super) enum SettingsField {
    DefaultRetry,
    DefaultTaskTimeout,
    ConcurrencyPolicy,
    Retention,
}

/// A location in a definition: its text and a key that sorts in definition order.
#[derive(Debug, Clone)]
pub(super) struct Path {
    text: String,
    key: Vec<usize>,
}

impl Path {
    pub(super) fn top(field: Top) -> Path {
        let text = match field {
            Top::Name => "name",
            Top::Description => "description",
            Top::Tasks => "tasks",
            Top::Settings => "settings",
            Top::Definition => "definition",
        };
        Path { text: text.to_owned(), key: vec![field as usize] }
    }

    /// `tasks[i]`.
    pub(super) fn task(i: usize) -> Path {
        Path::top(Top::Tasks).index(i)
    }

    /// `tasks[i].<field>`.
    pub(super) fn task_field(i: usize, field: TaskField) -> Path {
        let name = match field {
            TaskField::Name => "name",
            TaskField::TaskType => "task_type",
            TaskField::DependsOn => "depends_on",
            TaskField::Retry => "retry",
            TaskField::Timeout => "timeout",
            TaskField::Description => "description",
        };
        Path::task(i).field(name, field as usize)
    }

    /// `settings.<field>`.
    pub(super) fn settings(field: SettingsField) -> Path {
        let name = match field {
            SettingsField::DefaultRetry => "default_retry",
            SettingsField::DefaultTaskTimeout => "default_task_timeout",
            SettingsField::ConcurrencyPolicy => "concurrency_policy",
            SettingsField::Retention => "retention",
        };
        Path::top(Top::Settings).field(name, field as usize)
    }

    /// `<self>.<field>` of a retry spec.
    pub(super) fn retry(&self, field: RetryField) -> Path {
        let name = match field {
            RetryField::MaxAttempts => "max_attempts",
            RetryField::InitialBackoff => "initial_backoff",
            RetryField::Multiplier => "multiplier",
            RetryField::MaxBackoff => "max_backoff",
        };
        self.field(name, field as usize)
    }

    /// `<self>[i]`.
    pub(super) fn index(&self, i: usize) -> Path {
        let mut key = self.key.clone();
        key.push(i);
        Path { text: format!("{}[{i}]", self.text), key }
    }

    fn field(&self, name: &str, order: usize) -> Path {
        let mut key = self.key.clone();
        key.push(order);
        Path { text: format!("{}.{name}", self.text), key }
    }
}

/// Every problem found so far, each at a path.
#[derive(Debug, Default)]
pub(super) struct Problems {
    found: Vec<(Vec<usize>, ValidationError)>,
}

impl Problems {
    pub(super) fn push(&mut self, at: &Path, reason: impl Into<String>) {
        let error = ValidationError::new(at.text.clone(), reason);
        self.found.push((at.key.clone(), error));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The problems in definition order; several at one path keep the order found.
    pub(super) fn into_sorted(mut self) -> Vec<ValidationError> {
        self.found.sort_by(|a, b| a.0.cmp(&b.0));
        self.found.into_iter().map(|(_, error)| error).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_and_sort_in_definition_order() {
        let mut problems = Problems::default();
        let paths = [
            Path::top(Top::Definition),
            Path::settings(SettingsField::DefaultTaskTimeout),
            Path::settings(SettingsField::DefaultRetry).retry(RetryField::MaxBackoff),
            Path::task_field(10, TaskField::Name),
            Path::task_field(2, TaskField::Description),
            Path::task_field(2, TaskField::Retry).retry(RetryField::MaxAttempts),
            Path::task_field(2, TaskField::DependsOn).index(1),
            Path::task_field(2, TaskField::DependsOn).index(0),
            Path::task_field(2, TaskField::DependsOn),
            Path::top(Top::Tasks),
            Path::top(Top::Description),
            Path::top(Top::Name),
        ];
        for (n, path) in paths.iter().enumerate() {
            problems.push(path, format!("r{n}"));
        }
        let got: Vec<_> = problems.into_sorted().iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "name: r11",
                "description: r10",
                "tasks: r9",
                "tasks[2].depends_on: r8",
                "tasks[2].depends_on[0]: r7",
                "tasks[2].depends_on[1]: r6",
                "tasks[2].retry.max_attempts: r5",
                "tasks[2].description: r4",
                "tasks[10].name: r3",
                "settings.default_retry.max_backoff: r2",
                "settings.default_task_timeout: r1",
                "definition: r0",
            ]
        );
    }
}
