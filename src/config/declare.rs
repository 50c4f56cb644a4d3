//! What one row of the settings table is, and what the table expands to.
//!
//! [`settings!`] takes the rows of `table.rs` and generates from each one:
//!
//! - a field of [`Config`](super::Config), with the row's doc, flag,
//!   variable and help;
//! - a [`Setting`] in [`SETTINGS`](super::SETTINGS) (field, flag, variable,
//!   hint, default, help, form and rule), which `--help`, the environment
//!   check and the README test iterate;
//! - the line of `Config::resolve` that takes the flag, else the
//!   variable, else the default, through the row's rule;
//! - the field's entry in `Debug` (`plain`, or `masked` for secrets);
//! - its part of the start-up summary (`always`, `embedded` — only when the
//!   embedded backend runs — or `none` when another row shows it);
//! - whether SIGHUP applies a change to it (`live`) or it needs a restart
//!   (`restart`): [`Config::reload_from`](super::Config::reload_from).
//!
//! Adding a setting is adding a row: nothing else lists the settings.

use super::rules::Describe;

/// How a setting appears on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `--flag VALUE`, at most once.
    Value,
    /// `--flag VALUE`, any number of times, adding to the variable's list.
    Repeated,
    /// `--flag` without a value; its presence sets the setting to `sets`.
    Switch {
        /// The value the flag sets.
        sets: bool,
    },
}

/// Whether a change to a setting takes effect on SIGHUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// SIGHUP applies it without dropping anyone.
    Live,
    /// Read at start-up only; a change needs a restart.
    Restart,
}

/// One row of the settings table, without its value type.
pub struct Setting {
    /// The [`Config`](super::Config) field it fills.
    pub field: &'static str,
    /// Long flag, without the dashes.
    pub long: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Value placeholder in `--help`; empty for a switch.
    pub hint: &'static str,
    /// Raw default, read by the rule like any other value; `None` = unset.
    pub default: Option<&'static str>,
    /// One-line help.
    pub help: &'static str,
    /// How it is given on the command line.
    pub form: Form,
    /// Whether a reload (SIGHUP) applies a change to it.
    pub reload: Reload,
    /// What it accepts.
    pub(super) rule: &'static (dyn Describe + Sync),
}

impl Setting {
    /// What the setting accepts in the short form `--help` shows (a range,
    /// names separated by `|`); empty when the hint says it all.
    pub fn accepted(&self) -> String {
        self.rule.accepted()
    }
}

/// The settings table; see the module doc for what each row becomes.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty {
            flag: $long:literal,
            env: $env:literal,
            hint: $hint:literal,
            form: $form:ident $(($sets:literal))?,
            rule: $rule:expr,
            default: $default:expr,
            help: $help:literal,
            summary: $when:ident $(($key:literal, $show:expr))?,
            debug: $debug:ident,
            reload: $reload:ident $(,)?
        }
    )*) => {
        /// The effective settings of one gateway process.
        ///
        /// Built by [`Config::parse`] or [`Config::defaults`]; every field
        /// has passed the rule of its row in `src/config/table.rs`, which
        /// `--help` shows.
        #[derive(Clone)]
        pub struct Config {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!("`--", $long, "` / `", $env, "`: ", $help, ".")]
                pub $field: $ty,
            )*
        }

        /// Every setting, in `--help` order.
        pub const SETTINGS: &[Setting] = &[$(
            settings!(@row $field, $long, $env, $hint, $form $($sets)?, $rule, $default, $help, $reload),
        )*];

        impl Config {
            /// Each field from its flag, else its variable, else its default,
            /// through its rule.
            pub(super) fn resolve(sources: &Sources<'_>) -> Result<Config, ConfigError> {
                Ok(Config {$(
                    $field: {
                        const ROW: Setting = settings!(
                            @row $field, $long, $env, $hint, $form $($sets)?, $rule, $default, $help,
                            $reload
                        );
                        sources.$form(&ROW, &$rule)?
                    },
                )*})
            }

            /// Adds each row's part to the start-up summary, in table order.
            pub(super) fn summary_parts<'c>(&'c self, line: &mut Summary<'c>) {
                $($( line.$when($key, $show); )?)*
            }

            /// Takes from `new` every `live` setting that differs, and
            /// reports those and the `restart` settings that differ (left
            /// as they are). Values are compared as `Debug` shows them, so
            /// secrets stay masked in the report.
            pub fn reload_from(&mut self, new: &Config) -> Reloaded {
                let mut out = Reloaded::default();
                $(
                    let was = format!("{:?}", text::$debug(&self.$field));
                    let now = format!("{:?}", text::$debug(&new.$field));
                    if was != now {
                        match settings!(@reload $reload) {
                            Reload::Live => {
                                self.$field = new.$field.clone();
                                out.applied.push(Change { env: $env, was, now });
                            }
                            Reload::Restart => out.ignored.push($env),
                        }
                    }
                )*
                out
            }
        }

        impl std::fmt::Debug for Config {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("Config")
                    $( .field(stringify!($field), &text::$debug(&self.$field)) )*
                    .finish()
            }
        }
    };

    (@row $field:ident, $long:literal, $env:literal, $hint:literal, $form:ident $($sets:literal)?,
        $rule:expr, $default:expr, $help:literal, $reload:ident) => {
        Setting {
            field: stringify!($field),
            long: $long,
            env: $env,
            hint: $hint,
            default: $default,
            help: $help,
            form: settings!(@form $form $($sets)?),
            reload: settings!(@reload $reload),
            rule: &$rule,
        }
    };

    (@reload live) => { Reload::Live };
    (@reload restart) => { Reload::Restart };
    (@form value) => { Form::Value };
    (@form optional) => { Form::Value };
    (@form repeated) => { Form::Repeated };
    (@form switch $sets:literal) => { Form::Switch { sets: $sets } };
}

pub(super) use settings;
