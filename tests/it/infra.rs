//! The SAM template against the code it deploys: routes, functions, the table, the queues, the
//! policies and the configuration. `sam validate --lint` and cfn-lint check the syntax; these
//! check that the template describes this service (offline linting misses e.g. a typo in an
//! event property or a visibility timeout below the consumer's timeout).
//!
//! The template uses CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`), as SAM users write
//! it; `serde_norway` keeps them as tagged values, and the long forms are read the same way.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::adapters::dynamodb::tables::{
    main_table, IndexProjection, TableSpec, KEY_HASH_PK_PREFIX, LAST_USED_AT, PK, SK,
};
use common::adapters::sqs::DELIVERY_QUEUE_VISIBILITY;
use common::config::{MAX_EVENTS_PER_SECOND, MAX_WEBHOOKS_PER_TENANT, RETENTION_DAYS};
use common::domain::delivery::RetrySchedule;
use common::domain::retention::{Retention, MAX_RETENTION_DAYS};
use common::http::routes::ROUTES;
use common::service::deps::TenantLimits;
use serde_norway::Value;

/// Binaries under `functions/` that are not Lambda functions.
const NOT_LAMBDAS: [&str; 2] = ["local", "admin"];

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

struct Template(Value);

impl Template {
    fn load() -> Template {
        let path = repo_root().join("infra/template.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        Template(serde_norway::from_str(&text).expect("infra/template.yaml is valid YAML"))
    }

    fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0["Resources"]
            .as_mapping()
            .expect("Resources")
            .iter()
            .map(|(name, resource)| (name.as_str().unwrap(), resource))
    }

    fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.resources()
            .filter(move |(_, resource)| resource["Type"].as_str() == Some(kind))
    }

    fn resource(&self, name: &str) -> &Value {
        let resource = &self.0["Resources"][name];
        assert!(!resource.is_null(), "resource {name} is missing");
        resource
    }

    fn functions(&self) -> Vec<Function<'_>> {
        self.resources_of_type("AWS::Serverless::Function")
            .map(|(name, resource)| Function::new(name, resource))
            .collect()
    }

    fn globals(&self) -> &Value {
        &self.0["Globals"]["Function"]
    }
}

/// `!Ref X` or `{Ref: X}`.
fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        Value::Mapping(map) if map.len() == 1 => map.get("Ref").and_then(Value::as_str),
        _ => None,
    }
}

/// `!GetAtt X.Attr`, `!GetAtt [X, Attr]` or `{Fn::GetAtt: [X, Attr]}`, as (X, Attr).
fn get_att(value: &Value) -> Option<(String, String)> {
    let inner = match value {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => &tagged.value,
        Value::Mapping(map) if map.len() == 1 => map.get("Fn::GetAtt")?,
        _ => return None,
    };
    match inner {
        Value::String(dotted) => dotted
            .split_once('.')
            .map(|(resource, attribute)| (resource.to_owned(), attribute.to_owned())),
        Value::Sequence(parts) => match parts.as_slice() {
            [resource, attribute] => Some((
                resource.as_str()?.to_owned(),
                attribute.as_str()?.to_owned(),
            )),
            _ => None,
        },
        _ => None,
    }
}

fn number(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
        .unwrap_or_else(|| panic!("{what} is not a number: {value:?}"))
}

/// `!Sub text` or `{Fn::Sub: text}` (the form without variables of its own).
fn sub_text(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged.value.as_str(),
        Value::Mapping(map) if map.len() == 1 => map.get("Fn::Sub").and_then(Value::as_str),
        _ => None,
    }
}

/// A value or each value of a list, as IAM's `Action` and `Resource` are written either way.
fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    }
}

/// The tags of a CloudFormation resource (`[{Key, Value}]`) or of a SAM one (a map).
fn tags(value: &Value) -> Vec<(&str, &Value)> {
    match value {
        Value::Sequence(tags) => tags
            .iter()
            .map(|tag| (tag["Key"].as_str().unwrap_or_default(), &tag["Value"]))
            .collect(),
        Value::Mapping(tags) => tags
            .iter()
            .map(|(key, value)| (key.as_str().unwrap_or_default(), value))
            .collect(),
        _ => Vec::new(),
    }
}

/// Tagged `app: crm-webhooks` and `stage: <Stage>`, as cost reports and clean-ups select them.
fn assert_service_tags(owner: &str, value: &Value) {
    let tags = tags(value);
    let tag = |key: &str| tags.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    assert_eq!(
        tag("app").and_then(Value::as_str),
        Some("crm-webhooks"),
        "{owner}: tag app"
    );
    assert_eq!(
        tag("stage").and_then(reference),
        Some("Stage"),
        "{owner}: tag stage"
    );
}

struct Function<'a> {
    name: &'a str,
    resource: &'a Value,
    /// The crate directory under `functions/`, from `CodeUri: ../functions/<dir>`.
    dir: String,
}

impl<'a> Function<'a> {
    fn new(name: &'a str, resource: &'a Value) -> Function<'a> {
        let code_uri = resource["Properties"]["CodeUri"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no CodeUri"));
        let dir = code_uri
            .strip_prefix("../functions/")
            .unwrap_or_else(|| panic!("{name}: CodeUri {code_uri} is not ../functions/<crate>"))
            .trim_end_matches('/')
            .to_owned();
        Function {
            name,
            resource,
            dir,
        }
    }

    fn properties(&self) -> &'a Value {
        &self.resource["Properties"]
    }

    /// (event name, type, properties) of every event source.
    fn events(&self) -> Vec<(&'a str, &'a str, &'a Value)> {
        self.properties()["Events"]
            .as_mapping()
            .map(|events| {
                events
                    .iter()
                    .map(|(name, event)| {
                        (
                            name.as_str().unwrap(),
                            event["Type"].as_str().unwrap_or_default(),
                            &event["Properties"],
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn http_events(&self) -> Vec<&'a Value> {
        self.events()
            .into_iter()
            .filter(|(_, kind, _)| *kind == "HttpApi")
            .map(|(_, _, properties)| properties)
            .collect()
    }

    /// Its own setting, else the Globals one.
    fn setting<'t>(&self, template: &'t Template, key: &str) -> &'t Value
    where
        'a: 't,
    {
        let own = &self.properties()[key];
        if own.is_null() {
            &template.globals()[key]
        } else {
            own
        }
    }
}

fn lambda_crates() -> BTreeSet<String> {
    std::fs::read_dir(repo_root().join("functions"))
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().into_string().unwrap())
        .filter(|name| !NOT_LAMBDAS.contains(&name.as_str()))
        .collect()
}

fn diff<T: Ord + std::fmt::Debug>(expected: &BTreeSet<T>, actual: &BTreeSet<T>) -> String {
    format!(
        "missing from the template: {:?}; in the template only: {:?}",
        expected.difference(actual).collect::<Vec<_>>(),
        actual.difference(expected).collect::<Vec<_>>()
    )
}

#[test]
fn every_lambda_crate_has_one_function_built_by_cargo_lambda() {
    let template = Template::load();
    let functions = template.functions();
    let in_template: BTreeSet<String> = functions.iter().map(|f| f.dir.clone()).collect();
    assert_eq!(
        in_template.len(),
        functions.len(),
        "two functions share a crate"
    );
    let crates = lambda_crates();
    assert_eq!(crates, in_template, "{}", diff(&crates, &in_template));

    for function in &functions {
        let metadata = &function.resource["Metadata"];
        assert_eq!(
            metadata["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{}",
            function.name
        );
        // The package and its binary are named after the directory.
        assert_eq!(
            metadata["BuildProperties"]["Binary"].as_str(),
            Some(function.dir.as_str()),
            "{}: BuildProperties.Binary",
            function.name
        );
        let manifest = std::fs::read_to_string(
            repo_root()
                .join("functions")
                .join(&function.dir)
                .join("Cargo.toml"),
        )
        .unwrap();
        assert!(
            manifest.contains(&format!("name = \"{}\"", function.dir)),
            "functions/{}/Cargo.toml does not name its binary {}",
            function.dir,
            function.dir
        );
        assert_eq!(
            function.setting(&template, "Runtime").as_str(),
            Some("provided.al2023"),
            "{}",
            function.name
        );
        assert_eq!(
            function.setting(&template, "Handler").as_str(),
            Some("bootstrap"),
            "{}",
            function.name
        );
        let architectures: Vec<&str> = function
            .setting(&template, "Architectures")
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(architectures, ["arm64"], "{}", function.name);
    }
}

#[test]
fn http_api_routes_are_exactly_the_route_table() {
    let template = Template::load();
    let expected: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|route| {
            (
                route.method.to_string(),
                route.path.to_owned(),
                route.function.to_owned(),
            )
        })
        .collect();
    assert_eq!(expected.len(), ROUTES.len());

    let mut actual = BTreeSet::new();
    for function in template.functions() {
        for event in function.http_events() {
            assert_eq!(
                reference(&event["ApiId"]),
                Some("HttpApi"),
                "{}: every route belongs to the one HttpApi",
                function.name
            );
            let route = (
                event["Method"].as_str().unwrap().to_uppercase(),
                event["Path"].as_str().unwrap().to_owned(),
                function.dir.clone(),
            );
            assert!(
                actual.insert(route.clone()),
                "route declared twice: {route:?}"
            );
        }
    }
    assert_eq!(expected, actual, "{}", diff(&expected, &actual));
}

#[test]
fn http_api_is_throttled_on_the_default_stage_and_outputs_its_url() {
    let template = Template::load();
    let apis: Vec<&str> = template
        .resources_of_type("AWS::Serverless::HttpApi")
        .map(|(name, _)| name)
        .collect();
    assert_eq!(apis, ["HttpApi"]);
    let api = &template.resource("HttpApi")["Properties"];
    // A named stage would appear in every request path (lambda_http puts it in the URI) and no
    // route of the route table would match.
    assert_eq!(api["StageName"].as_str(), Some("$default"));
    let throttling = &api["DefaultRouteSettings"];
    assert!(number(&throttling["ThrottlingRateLimit"], "rate limit") > 0);
    assert!(number(&throttling["ThrottlingBurstLimit"], "burst limit") > 0);
    assert_eq!(
        get_att(&template.0["Outputs"]["ApiUrl"]["Value"]),
        Some(("HttpApi".into(), "ApiEndpoint".into()))
    );
}

/// A table's keys, indexes and TTL attribute: what `TableSpec` says and what the template says.
#[derive(Debug, PartialEq, Eq)]
struct TableShape {
    hash_key: String,
    range_key: String,
    /// (index name, hash key, range key, projection type)
    indexes: Vec<(String, String, String, String)>,
    ttl_attribute: Option<String>,
}

impl From<&TableSpec> for TableShape {
    fn from(spec: &TableSpec) -> TableShape {
        TableShape {
            hash_key: spec.hash_key.to_owned(),
            range_key: spec.range_key.to_owned(),
            indexes: spec
                .indexes
                .iter()
                .map(|index| {
                    let projection = match index.projection {
                        IndexProjection::All => "ALL",
                        IndexProjection::KeysOnly => "KEYS_ONLY",
                    };
                    (
                        index.name.to_owned(),
                        index.hash_key.to_owned(),
                        index.range_key.to_owned(),
                        projection.to_owned(),
                    )
                })
                .collect(),
            ttl_attribute: spec.ttl_attribute.map(str::to_owned),
        }
    }
}

/// (HASH, RANGE) attribute names of a KeySchema.
fn key_schema(owner: &str, schema: &Value) -> (String, String) {
    let elements = schema.as_sequence().unwrap();
    assert_eq!(elements.len(), 2, "{owner}: key schema");
    let key = |key_type: &str| {
        elements
            .iter()
            .find(|element| element["KeyType"].as_str() == Some(key_type))
            .and_then(|element| element["AttributeName"].as_str())
            .unwrap_or_else(|| panic!("{owner}: no {key_type} key"))
            .to_owned()
    };
    (key("HASH"), key("RANGE"))
}

fn table_shape(name: &str, properties: &Value) -> TableShape {
    let (hash_key, range_key) = key_schema(name, &properties["KeySchema"]);
    let indexes = properties["GlobalSecondaryIndexes"]
        .as_sequence()
        .map(|indexes| {
            indexes
                .iter()
                .map(|index| {
                    let index_name = index["IndexName"].as_str().unwrap().to_owned();
                    let projection = index["Projection"]["ProjectionType"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}.{index_name}: no projection"))
                        .to_owned();
                    let (hash, range) = key_schema(&index_name, &index["KeySchema"]);
                    (index_name, hash, range, projection)
                })
                .collect()
        })
        .unwrap_or_default();
    let ttl = &properties["TimeToLiveSpecification"];
    let ttl_attribute = (!ttl.is_null()).then(|| {
        assert_eq!(ttl["Enabled"].as_bool(), Some(true), "{name}: TTL disabled");
        ttl["AttributeName"].as_str().unwrap().to_owned()
    });
    TableShape {
        hash_key,
        range_key,
        indexes,
        ttl_attribute,
    }
}

#[test]
fn the_table_is_the_one_the_adapter_creates() {
    let template = Template::load();
    let tables: Vec<(&str, &Value)> = template.resources_of_type("AWS::DynamoDB::Table").collect();
    let names: Vec<&str> = tables.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["Table"], "one table, as common::config uses one");

    let (name, table) = tables[0];
    let properties = &table["Properties"];
    let spec = main_table();
    assert_eq!(table_shape(name, properties), TableShape::from(&spec));
    // Every key attribute is a string, and only key attributes are declared.
    let declared: BTreeSet<(&str, &str)> = properties["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|attribute| {
            (
                attribute["AttributeName"].as_str().unwrap(),
                attribute["AttributeType"].as_str().unwrap(),
            )
        })
        .collect();
    let keys: BTreeSet<(&str, &str)> = [spec.hash_key, spec.range_key]
        .into_iter()
        .chain(
            spec.indexes
                .iter()
                .flat_map(|index| [index.hash_key, index.range_key]),
        )
        .map(|key| (key, "S"))
        .collect();
    assert_eq!(declared, keys);

    assert_eq!(properties["BillingMode"].as_str(), Some("PAY_PER_REQUEST"));
    assert_eq!(
        properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true)
    );
}

#[test]
fn the_delivery_queue_redrives_to_a_watched_dead_letter_queue() {
    let template = Template::load();
    let queue = &template.resource("DeliveryQueue")["Properties"];
    let redrive = &queue["RedrivePolicy"];
    assert_eq!(
        get_att(&redrive["deadLetterTargetArn"]),
        Some(("DeliveryDeadLetterQueue".into(), "Arn".into()))
    );
    assert!(number(&redrive["maxReceiveCount"], "maxReceiveCount") >= 5);

    let dead_letters = &template.resource("DeliveryDeadLetterQueue")["Properties"];
    assert!(
        number(&dead_letters["MessageRetentionPeriod"], "DLQ retention")
            > number(&queue["MessageRetentionPeriod"], "queue retention"),
        "dead letters must outlive the messages they were"
    );

    let alarms: Vec<&Value> = template
        .resources_of_type("AWS::CloudWatch::Alarm")
        .map(|(_, alarm)| &alarm["Properties"])
        .filter(|alarm| {
            alarm["Dimensions"].as_sequence().is_some_and(|dimensions| {
                dimensions.iter().any(|dimension| {
                    dimension["Name"].as_str() == Some("QueueName")
                        && get_att(&dimension["Value"])
                            == Some(("DeliveryDeadLetterQueue".into(), "QueueName".into()))
                })
            })
        })
        .collect();
    assert_eq!(alarms.len(), 1, "one alarm on the dead-letter queue");
    let alarm = alarms[0];
    assert_eq!(alarm["Namespace"].as_str(), Some("AWS/SQS"));
    assert_eq!(
        alarm["MetricName"].as_str(),
        Some("ApproximateNumberOfMessagesVisible")
    );
    // Fires on the first dead letter.
    assert_eq!(
        alarm["ComparisonOperator"].as_str(),
        Some("GreaterThanThreshold")
    );
    assert_eq!(number(&alarm["Threshold"], "threshold"), 0);
}

/// API Gateway ends an integration after 30 s whatever the function does; a function behind it
/// that may run longer works on for nobody.
const API_GATEWAY_TIMEOUT_SECONDS: u64 = 30;

#[test]
fn functions_behind_the_api_give_up_before_api_gateway_does() {
    let template = Template::load();
    let mut behind_the_api = 0;
    for function in template.functions() {
        let routed = function
            .events()
            .iter()
            .any(|(_, kind, _)| ["Api", "HttpApi"].contains(kind));
        if !routed {
            continue;
        }
        behind_the_api += 1;
        let timeout = number(function.setting(&template, "Timeout"), "Timeout");
        assert!(
            timeout < API_GATEWAY_TIMEOUT_SECONDS,
            "{}: a timeout of {timeout} s outlasts API Gateway's {API_GATEWAY_TIMEOUT_SECONDS} s",
            function.name
        );
    }
    assert!(behind_the_api > 0);
}

/// The template's event source mappings, as (name, properties).
fn event_source_mappings(template: &Template) -> Vec<(&str, &Value)> {
    template
        .resources_of_type("AWS::Lambda::EventSourceMapping")
        .map(|(name, mapping)| (name, &mapping["Properties"]))
        .collect()
}

/// The function an event source mapping invokes (`FunctionName: !Ref XFunction`).
fn mapped_function<'t>(template: &'t Template, name: &str, mapping: &Value) -> Function<'t> {
    let function = reference(&mapping["FunctionName"])
        .unwrap_or_else(|| panic!("{name}: FunctionName is not a !Ref to a function"));
    template
        .functions()
        .into_iter()
        .find(|candidate| candidate.name == function)
        .unwrap_or_else(|| panic!("{name}: {function} is not a function of the template"))
}

#[test]
fn queue_consumers_report_partial_failures_within_the_visibility_timeout() {
    let template = Template::load();
    let default_timeout = number(&template.globals()["Timeout"], "Globals timeout");
    let visibility_of = |queue: &str| {
        number(
            &template.resource(queue)["Properties"]["VisibilityTimeout"],
            "VisibilityTimeout",
        )
    };
    // A consumer that sets no Timeout of its own gets the default one.
    assert!(visibility_of("DeliveryQueue") >= 6 * default_timeout);

    let mappings = event_source_mappings(&template);
    let consumers: Vec<(String, String)> = mappings
        .iter()
        .map(|(name, mapping)| {
            let function = mapped_function(&template, name, mapping);
            let timeout = number(function.setting(&template, "Timeout"), "Timeout");
            let (queue, attribute) = get_att(&mapping["EventSourceArn"])
                .unwrap_or_else(|| panic!("{name}: EventSourceArn is not a GetAtt"));
            assert_eq!(attribute, "Arn");
            assert!(
                visibility_of(&queue) >= 6 * timeout,
                "{queue}'s visibility timeout must be at least 6x {}'s timeout ({timeout} s)",
                function.name
            );
            let response_types: Vec<&str> = mapping["FunctionResponseTypes"]
                .as_sequence()
                .map(|types| types.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            assert_eq!(
                response_types,
                ["ReportBatchItemFailures"],
                "{name}: without it one failed message retries the whole batch"
            );
            let batch = number(&mapping["BatchSize"], "BatchSize");
            assert!((1..=10).contains(&batch), "{name}");
            // The mapping polls with the function's role.
            let granted = granted(&template, &function);
            for action in POLLING {
                assert!(
                    granted.contains(&(action.to_owned(), Target::Queue(queue.clone()))),
                    "{}: the mapping {name} needs {action} on {queue}",
                    function.name
                );
            }
            (function.name.to_owned(), queue)
        })
        .collect();
    assert_eq!(
        consumers,
        [("WorkerFunction".to_owned(), "DeliveryQueue".to_owned())]
    );
}

#[test]
fn the_worker_runs_at_most_worker_max_concurrency_instances() {
    let template = Template::load();
    let mappings = event_source_mappings(&template);
    for (name, mapping) in &mappings {
        assert_eq!(
            reference(&mapping["ScalingConfig"]["MaximumConcurrency"]),
            Some("WorkerMaxConcurrency"),
            "{name}: without a bound, a burst of deliveries takes the account's Lambda \
             concurrency"
        );
    }
    assert!(!mappings.is_empty());
    let parameter = &template.0["Parameters"]["WorkerMaxConcurrency"];
    assert_eq!(parameter["Type"].as_str(), Some("Number"));
    // What SQS event sources accept.
    let (low, high) = (
        number(&parameter["MinValue"], "MinValue"),
        number(&parameter["MaxValue"], "MaxValue"),
    );
    assert_eq!((low, high), (2, 1000));
    let default = number(&parameter["Default"], "Default");
    assert!((low..=high).contains(&default), "default {default}");
}

#[test]
fn functions_without_routes_run_from_the_queue_or_every_minute() {
    let template = Template::load();
    let mapped: Vec<String> = event_source_mappings(&template)
        .iter()
        .map(|(name, mapping)| mapped_function(&template, name, mapping).name.to_owned())
        .collect();
    for function in template.functions() {
        let events = function.events();
        for (event, kind, properties) in &events {
            // Not `SQS`: SAM attaches AWSLambdaSQSQueueExecutionRole for it, which may receive
            // and delete on every queue of the account. Queues are event source mappings.
            assert!(
                ["HttpApi", "ScheduleV2"].contains(kind),
                "{}.{event}: event type {kind} is not allowed",
                function.name
            );
            if *kind == "ScheduleV2" {
                assert_eq!(
                    properties["ScheduleExpression"].as_str(),
                    Some("rate(1 minute)"),
                    "{}.{event}",
                    function.name
                );
            }
        }
        assert!(
            !events.is_empty() || mapped.iter().any(|name| name == function.name),
            "{} has no event source: nothing would ever run it",
            function.name
        );
    }
}

#[test]
fn the_sweeper_schedule_is_named_per_stack_and_never_retried() {
    let template = Template::load();
    let mut schedules = 0;
    for function in template.functions() {
        for (event, kind, properties) in function.events() {
            if kind != "ScheduleV2" {
                continue;
            }
            schedules += 1;
            // SAM names a schedule after its logical id when it has no Name, and schedule names
            // are unique per account and Region: a second stack would fail to deploy.
            let name = sub_text(&properties["Name"]);
            assert!(
                name.is_some_and(|name| name.contains("${AWS::StackName}")),
                "{}.{event}: Name must be a !Sub with ${{AWS::StackName}}, not {:?}",
                function.name,
                properties["Name"]
            );
            // A sweep that failed or came late is not made up for: the next minute's does it.
            let retry = &properties["RetryPolicy"];
            assert_eq!(
                number(&retry["MaximumRetryAttempts"], "MaximumRetryAttempts"),
                0,
                "{}.{event}",
                function.name
            );
            assert_eq!(
                number(
                    &retry["MaximumEventAgeInSeconds"],
                    "MaximumEventAgeInSeconds"
                ),
                60,
                "{}.{event}",
                function.name
            );
            // The schedule invokes asynchronously; Lambda would retry a failed sweep twice.
            let invoke = &function.properties()["EventInvokeConfig"];
            assert_eq!(
                number(&invoke["MaximumRetryAttempts"], "MaximumRetryAttempts"),
                0,
                "{}: EventInvokeConfig",
                function.name
            );
            assert_eq!(
                number(
                    &invoke["MaximumEventAgeInSeconds"],
                    "MaximumEventAgeInSeconds"
                ),
                60,
                "{}: EventInvokeConfig",
                function.name
            );
        }
    }
    assert_eq!(schedules, 1);
}

/// Properties that name a resource. Names are unique per account and Region, and two stacks of
/// this template live in one account (`crm-webhooks` and `crm-webhooks-dev`): a name given here
/// must carry the stack's name; without one, CloudFormation makes a unique one.
const NAME_PROPERTIES: [(&str, &str); 6] = [
    ("AWS::Serverless::Function", "FunctionName"),
    ("AWS::DynamoDB::Table", "TableName"),
    ("AWS::SQS::Queue", "QueueName"),
    ("AWS::SNS::Topic", "TopicName"),
    ("AWS::Logs::LogGroup", "LogGroupName"),
    ("AWS::CloudWatch::Alarm", "AlarmName"),
];

#[test]
fn every_name_given_in_the_template_carries_the_stack_name() {
    let template = Template::load();
    for (kind, property) in NAME_PROPERTIES {
        for (name, resource) in template.resources_of_type(kind) {
            let value = &resource["Properties"][property];
            if value.is_null() {
                continue;
            }
            assert!(
                sub_text(value).is_some_and(|text| text.contains("${AWS::StackName}")),
                "{name}.{property} must be a !Sub with ${{AWS::StackName}}, not {value:?}"
            );
        }
    }
}

/// Retention values CloudWatch Logs accepts.
const LOG_RETENTION_DAYS: [u64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

#[test]
fn every_log_group_keeps_logs_for_the_retention_parameter() {
    let template = Template::load();
    let parameter = &template.0["Parameters"]["LogRetentionDays"];
    assert_eq!(parameter["Type"].as_str(), Some("Number"));
    let allowed: Vec<u64> = parameter["AllowedValues"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|value| number(value, "AllowedValues"))
        .collect();
    assert_eq!(allowed, LOG_RETENTION_DAYS);
    assert_eq!(number(&parameter["Default"], "Default"), 30);

    let groups: Vec<(&str, &Value)> = template.resources_of_type("AWS::Logs::LogGroup").collect();
    assert!(!groups.is_empty());
    for (name, group) in groups {
        assert_eq!(
            reference(&group["Properties"]["RetentionInDays"]),
            Some("LogRetentionDays"),
            "{name}: without a retention, logs are kept (and paid for) forever"
        );
    }
}

#[test]
fn every_function_logs_json_to_a_log_group_of_its_own() {
    let template = Template::load();
    let mut used = BTreeSet::new();
    for function in template.functions() {
        let own = &function.properties()["LoggingConfig"];
        let group = reference(&own["LogGroup"]).unwrap_or_else(|| {
            panic!(
                "{}: LoggingConfig.LogGroup must be a !Ref to a log group of the template \
                 (Lambda's own group has no retention)",
                function.name
            )
        });
        assert_eq!(
            template.resource(group)["Type"].as_str(),
            Some("AWS::Logs::LogGroup"),
            "{}: {group}",
            function.name
        );
        assert!(used.insert(group), "{group} is shared by two functions");
        // SAM merges the function's LoggingConfig over the Globals one.
        let format = match &own["LogFormat"] {
            Value::Null => &template.globals()["LoggingConfig"]["LogFormat"],
            format => format,
        };
        assert_eq!(format.as_str(), Some("JSON"), "{}", function.name);
    }
}

#[test]
fn the_api_writes_json_access_logs_to_a_log_group_of_its_own() {
    let template = Template::load();
    let settings = &template.resource("HttpApi")["Properties"]["AccessLogSettings"];
    let (group, attribute) = get_att(&settings["DestinationArn"])
        .expect("HttpApi.AccessLogSettings.DestinationArn is a !GetAtt of a log group");
    assert_eq!(attribute, "Arn");
    assert_eq!(
        template.resource(&group)["Type"].as_str(),
        Some("AWS::Logs::LogGroup")
    );
    let functions_groups: Vec<String> = template
        .functions()
        .iter()
        .filter_map(|f| reference(&f.properties()["LoggingConfig"]["LogGroup"]).map(str::to_owned))
        .collect();
    assert!(
        !functions_groups.contains(&group),
        "{group} is a function's"
    );

    let format = settings["Format"].as_str().expect("a Format string");
    let line: serde_json::Value = serde_json::from_str(format)
        .unwrap_or_else(|error| panic!("the access log Format is not JSON ({error}): {format}"));
    for (field, variable) in [
        ("requestId", "$context.requestId"),
        ("ip", "$context.identity.sourceIp"),
        ("routeKey", "$context.routeKey"),
        ("status", "$context.status"),
        ("responseLength", "$context.responseLength"),
        (
            "integrationErrorMessage",
            "$context.integrationErrorMessage",
        ),
    ] {
        assert_eq!(
            line[field].as_str(),
            Some(variable),
            "access log field {field}"
        );
    }
}

/// What an IAM statement of a function may name: the table, one of its indexes, or a queue of
/// this template. Anything else (`*`, a wildcard index, another stack's ARN) fails the tests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Table,
    Index(String),
    Queue(String),
    /// The table, under the one condition a statement may carry: the `last_used_at` attribute
    /// of the API keys' copies under their hashes (`RecordKeyUse`).
    KeyUses,
    /// A KMS key of this template.
    Key(String),
}

/// The `RecordKeyUse` statement's condition: only `last_used_at` (with the key it is written
/// under), only on items whose partition key starts with the prefix the store writes them
/// under, and nothing read back.
fn is_key_use_condition(condition: &Value) -> bool {
    let strings = |value: &Value| -> Vec<String> {
        one_or_many(value)
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let mapping = condition.as_mapping().map(|m| m.len()).unwrap_or_default();
    mapping == 3
        && strings(&condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
            == [format!("{KEY_HASH_PK_PREFIX}*")]
        && strings(&condition["ForAllValues:StringEquals"]["dynamodb:Attributes"])
            == [PK, SK, LAST_USED_AT]
        && strings(&condition["StringEqualsIfExists"]["dynamodb:ReturnValues"]) == ["NONE"]
}

fn target(owner: &str, resource: &Value, named: &Named) -> Target {
    if let Some((name, attribute)) = get_att(resource) {
        if attribute == "Arn" && name == "Table" {
            return Target::Table;
        }
        if attribute == "Arn" && named.queues.contains(name.as_str()) {
            return Target::Queue(name);
        }
        if attribute == "Arn" && named.keys.contains(name.as_str()) {
            return Target::Key(name);
        }
    }
    let index = sub_text(resource).and_then(|text| text.strip_prefix("${Table.Arn}/index/"));
    match index {
        Some(index) if !index.is_empty() && !index.contains(['*', '$', '/']) => {
            Target::Index(index.to_owned())
        }
        _ => panic!(
            "{owner}: {resource:?} is not the table (!GetAtt Table.Arn), one of its indexes by \
             name (!Sub ${{Table.Arn}}/index/<name>), a queue or a KMS key of this template"
        ),
    }
}

/// The queues and KMS keys of the template, which a statement may name by `!GetAtt X.Arn`.
struct Named<'a> {
    queues: BTreeSet<&'a str>,
    keys: BTreeSet<&'a str>,
}

/// Every (action, target) that a function's `Policies` grant. Only policy documents are
/// allowed: SAM's policy templates grant more than their names say (DynamoDBReadPolicy and
/// DynamoDBCrudPolicy include Scan and every index), and managed policies are not scoped to
/// this stack.
fn granted(template: &Template, function: &Function) -> BTreeSet<(String, Target)> {
    let named = Named {
        queues: template
            .resources_of_type("AWS::SQS::Queue")
            .map(|(name, _)| name)
            .collect(),
        keys: template
            .resources_of_type("AWS::KMS::Key")
            .map(|(name, _)| name)
            .collect(),
    };
    let mut granted = BTreeSet::new();
    for policy in one_or_many(&function.properties()["Policies"]) {
        let is_document = policy.as_mapping().is_some_and(|document| {
            document
                .keys()
                .all(|key| matches!(key.as_str(), Some("Version" | "Statement")))
        });
        assert!(
            is_document,
            "{}: {policy:?} is not a policy document with statements",
            function.name
        );
        for statement in one_or_many(&policy["Statement"]) {
            let keys_allowed = statement.as_mapping().is_some_and(|statement| {
                statement.keys().all(|key| {
                    matches!(
                        key.as_str(),
                        Some("Sid" | "Effect" | "Action" | "Resource" | "Condition")
                    )
                })
            });
            assert!(
                keys_allowed,
                "{}: only Sid, Effect, Action, Resource and Condition: {statement:?}",
                function.name
            );
            let conditioned = !statement["Condition"].is_null();
            assert!(
                !conditioned || is_key_use_condition(&statement["Condition"]),
                "{}: the only condition is RecordKeyUse's: {statement:?}",
                function.name
            );
            assert_eq!(
                statement["Effect"].as_str(),
                Some("Allow"),
                "{}",
                function.name
            );
            let targets: Vec<Target> = one_or_many(&statement["Resource"])
                .into_iter()
                .map(|resource| match target(function.name, resource, &named) {
                    Target::Table if conditioned => Target::KeyUses,
                    other => {
                        assert!(
                            !conditioned,
                            "{}: {other:?} under a condition",
                            function.name
                        );
                        other
                    }
                })
                .collect();
            for action in one_or_many(&statement["Action"]) {
                let action = action.as_str().unwrap();
                assert!(
                    !action.contains('*'),
                    "{}: {action}: name each action",
                    function.name
                );
                for target in &targets {
                    granted.insert((action.to_owned(), target.clone()));
                }
            }
        }
    }
    granted
}

/// One function's grants: DynamoDB actions on the table, the indexes it queries, SQS actions on
/// the delivery queue.
struct Grant {
    function: &'static str,
    table: &'static [&'static str],
    indexes: &'static [&'static str],
    queue: &'static [&'static str],
}

const fn grant(
    function: &'static str,
    table: &'static [&'static str],
    indexes: &'static [&'static str],
    queue: &'static [&'static str],
) -> Grant {
    Grant {
        function,
        table,
        indexes,
        queue,
    }
}

/// What a queue's event source mapping does with the consumer's role.
const POLLING: [&str; 3] = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
];

/// Exactly what each function's code calls: DynamoDB actions on the table, the indexes it
/// queries (Query is the only call on an index), SQS actions on the delivery queue.
///
/// Derived by reading the code: `functions/<name>/src/main.rs` serves its rows of the route
/// table (`common/src/http/handlers.rs`; GraphQL's resolvers in `common/src/graphql/`) through
/// the use cases in `common/src/service/`, which call these `Store` methods of `DynamoStore`
/// (`common/src/adapters/dynamodb/`) and `Queue::send` (SendMessageBatch: `sqs:SendMessage`):
///
/// - `find_api_key` (authentication, every route but the public ones), `get_client`,
///   `get_webhook`, `sync_counts`: GetItem;
/// - `record_key_use` (authentication, at most once a minute per key): UpdateItem, on the key's
///   copy under its hash only for the functions of `RECORD_KEY_USE`;
/// - `list_api_keys`: Query, then BatchGetItem (the keys' last uses);
/// - `list_clients`, `list_webhooks`, `list_attempts`, `delivery_counts`: Query
///   on the table; `list_clients` by status: Query on gsi1; `get_delivery`: Query, then GetItem
///   (its event's payload);
/// - `put_api_key`: PutItem (a transaction's Put needs PutItem: IAM has no TransactWriteItems
///   action); `update_webhook`: UpdateItem; `delete_api_key`: GetItem, DeleteItem;
/// - the audit log: a management write (`create_tenant`, `put_api_key`, `delete_api_key`,
///   `create_webhook`, `update_webhook`, `delete_webhook`) puts its entry in its transaction,
///   and a test send, a recovery, a replay, a retry or a resend `append_audit`s: PutItem;
///   `list_audit` (`keys`, GraphQL): Query;
/// - `create_webhook`: PutItem and UpdateItem (the tenant's webhook count, in the same
///   transaction); `delete_webhook`: DeleteItem and UpdateItem (the same count);
/// - `take_event_quota` (notify, before its event is written): UpdateItem;
/// - `reserve_send_slot` (the worker, for a rate-limited webhook): UpdateItem, and GetItem when
///   a failed condition leaves out the item;
/// - notify with an idempotency key (the notify function, GraphQL): `find_idempotency_record`:
///   GetItem; `claim_idempotency_key`: PutItem; `record_idempotent_answer`: UpdateItem (all
///   three already granted to both for notify's other calls);
/// - `write_client`: PutItem or DeleteItem (the client), UpdateItem (counters), PutItem (events);
/// - fan-out (`dispatch_events`, `notify`, the sweeper): `list_webhooks`, then
///   `put_payload`: PutItem (one per event), `create_deliveries`: PutItem and UpdateItem (in
///   transactions); then send, and
///   `mark_event_dispatched`: UpdateItem; re-enabling a webhook (`webhook`) fans out
///   `webhook.enabled` so, and a replay (`retry`, the worker) creates deliveries so;
/// - `write_delivery`: UpdateItem, with PutItem (the attempt) in a transaction;
/// - `search_deliveries`: Query on the four search indexes (keys only) or on gsi2, then
///   BatchGetItem (the page's summaries); a recovery (`retry`, the worker) searches one
///   webhook's deliveries of a status so, on search_webhook; re-enabling with `recover`
///   (`webhook`) only queues the recovery for the worker;
/// - `list_clients`: Query on gsi1 (by status) or, for stale clients, on last_sync (keys
///   only), then BatchGetItem (the page's clients);
/// - `list_deliveries`: Query on gsi2; `undispatched_events`, `due_deliveries`,
///   `failed_deliveries`: Query on gsi1; none of them reads a payload.
///
/// A change to what a use case or a Store method calls changes rows here and the template.
/// The indexes a delivery search or a webhook's delivery list may read.
const SEARCH: &[&str] = &[
    "gsi2",
    "search_tenant",
    "search_event",
    "search_webhook",
    "search_webhook_event",
];

#[rustfmt::skip]
const GRANTS: &[Grant] = &[
    // function                    dynamodb: on the table                                                                          Query on   sqs: on the queue
    grant("sync-status",           &["GetItem"],                                                                                   &[],       &[]),
    grant("update-sync-status",    &["GetItem", "PutItem", "UpdateItem", "Query"],                               &[],       &["SendMessage"]),
    grant("clients",               &["GetItem", "BatchGetItem", "PutItem", "UpdateItem", "Query"],               &["gsi1", "last_sync"], &["SendMessage"]),
    grant("client",                &["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"],                 &[],       &["SendMessage"]),
    grant("keys",                  &["GetItem", "BatchGetItem", "PutItem", "Query"],                                               &[],       &[]),
    grant("key",                   &["GetItem", "PutItem", "DeleteItem"],                                                          &[],       &[]),
    grant("notify",                &["GetItem", "PutItem", "UpdateItem", "Query"],                               &[],       &["SendMessage"]),
    grant("retry",                 &["GetItem", "BatchGetItem", "PutItem", "UpdateItem", "Query"],               &["search_webhook"], &["SendMessage"]),
    grant("webhook-events",        &["GetItem"],                                                                                   &[],       &[]),
    grant("openapi",               &[],                                                                                            &[],       &[]),
    grant("dashboard",             &[],                                                                                            &[],       &[]),
    grant("webhook-stats",         &["GetItem", "Query"],                                                                          &[],       &[]),
    grant("delivery",              &["GetItem", "Query"],                                                                          &[],       &[]),
    grant("webhooks",              &["GetItem", "PutItem", "UpdateItem", "Query"],                                                 &[],       &[]),
    grant("webhook",               &["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"],                 &[],       &["SendMessage"]),
    grant("webhook-test",          &["GetItem", "PutItem", "UpdateItem", "Query"],                               &[],       &[]),
    grant("webhook-rotate-secret", &["GetItem", "PutItem", "UpdateItem"],                                                          &[],       &[]),
    grant("webhook-deliveries",    &["GetItem", "BatchGetItem"],                                                                   SEARCH,    &[]),
    grant("graphql",               &["GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"], SEARCH,    &["SendMessage"]),
    grant("worker",                &["GetItem", "BatchGetItem", "PutItem", "UpdateItem", "Query"],                                 &["gsi1", "search_webhook"], &["SendMessage", "ReceiveMessage", "DeleteMessage", "GetQueueAttributes"]),
    grant("sweeper",               &["PutItem", "UpdateItem", "Query"],                                          &["gsi1"], &["SendMessage"]),
];

/// The functions that authenticate a request but may not update the table at large: authentication
/// writes a key's last use (`record_key_use`: UpdateItem on the key's copy under its hash), which
/// they may do through the `RecordKeyUse` statement, and nothing else.
const RECORD_KEY_USE: &[&str] = &[
    "sync-status",
    "keys",
    "key",
    "webhook-events",
    "webhook-stats",
    "delivery",
    "webhook-deliveries",
];

/// The functions whose routes take no key (`Route::public` in common's route table).
const PUBLIC: &[&str] = &["openapi", "dashboard"];

fn expected_grants(grant: &Grant) -> BTreeSet<(String, Target)> {
    let key_uses = RECORD_KEY_USE
        .contains(&grant.function)
        .then(|| ("dynamodb:UpdateItem".to_owned(), Target::KeyUses));
    let table = grant
        .table
        .iter()
        .map(|action| (format!("dynamodb:{action}"), Target::Table));
    let indexes = grant.indexes.iter().map(|index| {
        (
            "dynamodb:Query".to_owned(),
            Target::Index((*index).to_owned()),
        )
    });
    let queue = grant.queue.iter().map(|action| {
        (
            format!("sqs:{action}"),
            Target::Queue("DeliveryQueue".to_owned()),
        )
    });
    let secrets_key = SECRETS_KEY_GRANTS
        .iter()
        .filter(|(function, _)| *function == grant.function)
        .flat_map(|(_, actions)| actions.iter())
        .map(|action| (format!("kms:{action}"), Target::Key(SECRETS_KEY.to_owned())));
    table
        .chain(indexes)
        .chain(queue)
        .chain(secrets_key)
        .chain(key_uses)
        .collect()
}

/// The KMS key that wraps the data key of webhook secrets (docs/architecture.md §Secrets at rest).
const SECRETS_KEY: &str = "SecretsKey";

/// The functions that may use it, and how; no other function may. `Decrypt` unwraps the data
/// key, which opening a secret (to sign a delivery or a test) and sealing one (a new webhook, a
/// rotation) both need; `GenerateDataKey` makes the deployment's first data key, which the first
/// sealing does. Opening needs no new key: a sealed secret exists only once a data key does.
const SECRETS_KEY_GRANTS: &[(&str, &[&str])] = &[
    ("webhooks", &["Decrypt", "GenerateDataKey"]),
    ("webhook-rotate-secret", &["Decrypt", "GenerateDataKey"]),
    ("graphql", &["Decrypt", "GenerateDataKey"]),
    ("webhook-test", &["Decrypt"]),
    ("worker", &["Decrypt"]),
];

/// Only the functions of `SECRETS_KEY_GRANTS` are told the key (`CRM_KMS_KEY_ID`) and link the
/// KMS client (common's `kms` feature): the others' zips and cold starts stay as they were.
#[test]
fn only_the_functions_that_seal_or_open_secrets_know_the_secrets_key_and_link_kms() {
    let template = Template::load();
    assert!(
        template.globals()["Environment"]["Variables"]["CRM_KMS_KEY_ID"].is_null(),
        "not in Globals"
    );
    for function in template.functions() {
        let grants = SECRETS_KEY_GRANTS
            .iter()
            .any(|(name, _)| *name == function.dir);
        let variable = &function.properties()["Environment"]["Variables"]["CRM_KMS_KEY_ID"];
        if grants {
            assert_eq!(
                get_att(variable),
                Some((SECRETS_KEY.to_owned(), "Arn".to_owned())),
                "{}",
                function.name
            );
        } else {
            assert!(variable.is_null(), "{}: CRM_KMS_KEY_ID", function.name);
        }
        let manifest = std::fs::read_to_string(
            repo_root()
                .join("functions")
                .join(&function.dir)
                .join("Cargo.toml"),
        )
        .unwrap();
        let common = manifest
            .lines()
            .find(|line| line.starts_with("common"))
            .unwrap_or_else(|| panic!("{}: no common dependency", function.dir));
        assert_eq!(
            common.contains("\"kms\""),
            grants,
            "{}: {common}",
            function.dir
        );
    }
}

/// The key is the stack's, kept with the table it unlocks, rotated yearly by KMS, and its policy
/// gives the account's IAM (not any other account, nor a service) the say over it.
#[test]
fn the_secrets_key_is_kept_rotated_and_administered_by_the_account() {
    let template = Template::load();
    let keys: Vec<&str> = template
        .resources_of_type("AWS::KMS::Key")
        .map(|(name, _)| name)
        .collect();
    assert_eq!(keys, [SECRETS_KEY]);
    let key = template.resource(SECRETS_KEY);
    assert_eq!(key["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(key["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let properties = &key["Properties"];
    assert_eq!(properties["EnableKeyRotation"].as_bool(), Some(true));
    assert_eq!(properties["KeySpec"].as_str(), Some("SYMMETRIC_DEFAULT"));
    let statements = one_or_many(&properties["KeyPolicy"]["Statement"]);
    assert_eq!(statements.len(), 1, "{statements:?}");
    let root = &statements[0];
    assert_eq!(root["Effect"].as_str(), Some("Allow"));
    assert_eq!(
        sub_text(&root["Principal"]["AWS"]),
        Some("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")
    );
    let outputs = &template.0["Outputs"]["SecretsKeyArn"]["Value"];
    assert_eq!(
        get_att(outputs),
        Some((SECRETS_KEY.to_owned(), "Arn".to_owned())),
        "crm-admin encrypt-secrets needs it"
    );
}

#[test]
fn each_function_is_granted_exactly_what_its_code_calls() {
    let template = Template::load();
    let functions = template.functions();
    let in_table: BTreeSet<&str> = GRANTS.iter().map(|grant| grant.function).collect();
    let in_template: BTreeSet<&str> = functions.iter().map(|f| f.dir.as_str()).collect();
    assert_eq!(in_table, in_template, "GRANTS has a row per function");
    let indexes: BTreeSet<&str> = main_table()
        .indexes
        .iter()
        .map(|index| index.name)
        .collect();

    for grant in GRANTS {
        for index in grant.indexes {
            assert!(
                indexes.contains(index),
                "{}: no index {index}",
                grant.function
            );
        }
        let function = functions.iter().find(|f| f.dir == grant.function).unwrap();
        // With a Role of its own, SAM would ignore the Policies checked here.
        assert!(
            function.properties()["Role"].is_null(),
            "{}: no Role of its own",
            function.name
        );
        let expected = expected_grants(grant);
        let actual = granted(&template, function);
        assert_eq!(
            expected,
            actual,
            "{}: {}",
            function.name,
            diff(&expected, &actual)
        );
    }
}

#[test]
fn every_function_that_authenticates_may_record_a_key_use() {
    let template = Template::load();
    for function in template.functions() {
        let events = function.properties()["Events"].as_mapping().cloned();
        let serves_http = events.is_some_and(|events| {
            events
                .values()
                .any(|event| event["Type"].as_str() == Some("HttpApi"))
        });
        if !serves_http || PUBLIC.contains(&function.dir.as_str()) {
            continue;
        }
        let granted = granted(&template, &function);
        let update = "dynamodb:UpdateItem".to_owned();
        assert!(
            granted.contains(&(update.clone(), Target::Table))
                || granted.contains(&(update, Target::KeyUses)),
            "{}: authentication writes the key's last use",
            function.name
        );
    }
}

#[test]
fn no_function_may_scan_or_touch_sqs_beyond_the_delivery_queue() {
    let template = Template::load();
    assert!(
        template.globals()["Policies"].is_null() && template.globals()["Role"].is_null(),
        "grants are per function"
    );
    for function in template.functions() {
        for (action, target) in granted(&template, &function) {
            // A Scan reads every tenant's items: no request path needs one.
            assert_ne!(action, "dynamodb:Scan", "{}", function.name);
            if action.starts_with("sqs:") {
                assert_eq!(
                    target,
                    Target::Queue("DeliveryQueue".to_owned()),
                    "{}: {action}",
                    function.name
                );
            }
        }
    }
}

#[test]
fn every_alarm_notifies_the_alarm_topic() {
    let template = Template::load();
    let topics: Vec<&str> = template
        .resources_of_type("AWS::SNS::Topic")
        .map(|(name, _)| name)
        .collect();
    assert_eq!(topics, ["AlarmTopic"]);
    let alarms: Vec<(&str, &Value)> = template
        .resources_of_type("AWS::CloudWatch::Alarm")
        .collect();
    assert!(!alarms.is_empty());
    for (name, alarm) in alarms {
        let actions = one_or_many(&alarm["Properties"]["AlarmActions"]);
        assert!(
            actions
                .iter()
                .any(|action| reference(action) == Some("AlarmTopic")),
            "{name}: an alarm without an action tells nobody"
        );
    }

    // An optional address: subscribed only when the parameter is given.
    assert_eq!(
        template.0["Parameters"]["AlarmEmail"]["Default"].as_str(),
        Some("")
    );
    let subscriptions: Vec<&Value> = template
        .resources_of_type("AWS::SNS::Subscription")
        .map(|(_, subscription)| subscription)
        .collect();
    assert_eq!(subscriptions.len(), 1);
    let subscription = subscriptions[0];
    let condition = subscription["Condition"].as_str().expect("a Condition");
    assert!(
        !template.0["Conditions"][condition].is_null(),
        "{condition}"
    );
    let properties = &subscription["Properties"];
    assert_eq!(reference(&properties["TopicArn"]), Some("AlarmTopic"));
    assert_eq!(properties["Protocol"].as_str(), Some("email"));
    assert_eq!(reference(&properties["Endpoint"]), Some("AlarmEmail"));
}

#[test]
fn the_table_and_the_queues_outlive_the_stack() {
    let template = Template::load();
    let kept: Vec<(&str, &Value)> = template
        .resources_of_type("AWS::DynamoDB::Table")
        .chain(template.resources_of_type("AWS::SQS::Queue"))
        .collect();
    assert_eq!(kept.len(), 3, "the table, the delivery queue and its DLQ");
    for (name, resource) in kept {
        assert_eq!(
            resource["DeletionPolicy"].as_str(),
            Some("Retain"),
            "{name}"
        );
        assert_eq!(
            resource["UpdateReplacePolicy"].as_str(),
            Some("Retain"),
            "{name}"
        );
    }
    // Nor can anyone delete the table by hand, unless the stack says so.
    let protection = &template.resource("Table")["Properties"]["DeletionProtectionEnabled"];
    match reference(protection) {
        Some(parameter) => assert_eq!(
            template.0["Parameters"][parameter]["Default"].as_str(),
            Some("true"),
            "{parameter}"
        ),
        None => assert_eq!(protection.as_bool(), Some(true)),
    }
}

/// Resource types that take no tags.
const UNTAGGED: [&str; 2] = ["AWS::SNS::Subscription", "AWS::CloudWatch::Dashboard"];

#[test]
fn every_resource_is_tagged_with_the_service_and_its_stage() {
    let template = Template::load();
    let globals = template.globals();
    assert_service_tags("Globals.Function", &globals["Tags"]);
    // And on what SAM makes for each function (its role, its schedule's role).
    assert_eq!(globals["PropagateTags"].as_bool(), Some(true));
    for (name, resource) in template.resources() {
        let kind = resource["Type"].as_str().unwrap();
        let declared = &resource["Properties"]["Tags"];
        match kind {
            // SAM merges a function's own Tags and PropagateTags over the Globals ones.
            "AWS::Serverless::Function" => {
                let overridden: Vec<&str> = tags(declared)
                    .into_iter()
                    .map(|(key, _)| key)
                    .filter(|key| ["app", "stage"].contains(key))
                    .collect();
                assert!(overridden.is_empty(), "{name} overrides {overridden:?}");
                assert_ne!(
                    resource["Properties"]["PropagateTags"].as_bool(),
                    Some(false),
                    "{name}"
                );
            }
            _ if UNTAGGED.contains(&kind) => {}
            _ => assert_service_tags(name, declared),
        }
    }
}

#[test]
fn crm_admin_creates_the_delivery_queue_as_the_template_does() {
    let template = Template::load();
    let visibility = number(
        &template.resource("DeliveryQueue")["Properties"]["VisibilityTimeout"],
        "VisibilityTimeout",
    );
    assert_eq!(visibility, DELIVERY_QUEUE_VISIBILITY.as_secs());
    // crm-admin is a binary: its source is the only place to see which value it passes.
    let admin = std::fs::read_to_string(repo_root().join("functions/admin/src/main.rs")).unwrap();
    assert!(
        admin.contains("DELIVERY_QUEUE_VISIBILITY") && !admin.contains("from_secs("),
        "crm-admin create-tables must create the queue with DELIVERY_QUEUE_VISIBILITY"
    );
}

/// The variables every function reads, and what sets each: a resource or a parameter.
const FUNCTION_VARIABLES: [(&str, &str); 7] = [
    ("CRM_TABLE", "Table"),
    ("CRM_QUEUE_URL", "DeliveryQueue"),
    ("WEBHOOK_RETRY_DELAYS", "WebhookRetryDelays"),
    (MAX_WEBHOOKS_PER_TENANT, "MaxWebhooksPerTenant"),
    (MAX_EVENTS_PER_SECOND, "MaxEventsPerSecond"),
    (RETENTION_DAYS, "RetentionDays"),
    ("CRM_STACK", "AWS::StackName"),
];

#[test]
fn every_function_is_configured_for_the_table_queue_retry_schedule_and_limits() {
    let template = Template::load();
    let variables = &template.globals()["Environment"]["Variables"];
    for (name, source) in FUNCTION_VARIABLES {
        assert_eq!(reference(&variables[name]), Some(source), "{name}");
    }
    // A function's own Environment is merged over the Globals one by SAM: it may add, not drop.
    for function in template.functions() {
        if let Some(own) = function.properties()["Environment"]["Variables"].as_mapping() {
            for (name, _) in FUNCTION_VARIABLES {
                assert!(
                    !own.contains_key(name),
                    "{} overrides {name}",
                    function.name
                );
            }
        }
    }

    // A deployment without the parameter behaves as the engine does without the variable.
    let parameters = &template.0["Parameters"];
    let delays = parameters["WebhookRetryDelays"]["Default"]
        .as_str()
        .unwrap();
    assert_eq!(RetrySchedule::parse(delays), Ok(RetrySchedule::default()));
    let limits = TenantLimits::default();
    for (parameter, default) in [
        ("MaxWebhooksPerTenant", limits.webhooks),
        ("MaxEventsPerSecond", limits.events_per_second),
    ] {
        assert_eq!(
            parameters[parameter]["Default"].as_u64(),
            Some(default as u64),
            "{parameter}"
        );
        assert_eq!(parameters[parameter]["MinValue"].as_u64(), Some(1));
    }
    let retention = &parameters["RetentionDays"];
    assert_eq!(
        retention["Default"].as_i64().map(Retention::days),
        Some(Some(Retention::default()))
    );
    assert_eq!(retention["MinValue"].as_i64(), Some(1));
    assert_eq!(retention["MaxValue"].as_i64(), Some(MAX_RETENTION_DAYS));
    assert_eq!(parameters["Stage"]["Type"].as_str(), Some("String"));
    assert!(parameters["Stage"]["Default"].as_str().is_some());
}

/// The metrics an alarm watches: its own, or those of its math's `MetricStat`s.
fn alarm_metrics(alarm: &Value) -> Vec<&Value> {
    let properties = &alarm["Properties"];
    if properties["MetricName"].is_string() {
        return vec![properties];
    }
    one_or_many(&properties["Metrics"])
        .into_iter()
        .filter_map(|query| {
            let metric = &query["MetricStat"]["Metric"];
            (!metric.is_null()).then_some(metric)
        })
        .collect()
}

/// Every alarm and dashboard metric in the service's namespace is one the code writes, with the
/// dimensions it writes, the stack's name as `Stack`; and the alarms are all there.
#[test]
fn alarms_and_the_dashboard_watch_the_metrics_the_service_writes() {
    let template = Template::load();
    let emitted = common::metrics::emitted();
    let check = |where_: &str, name: &str, dimensions: Vec<String>| {
        let Some((_, expected)) = emitted.iter().find(|(emitted, _)| *emitted == name) else {
            panic!("{where_}: {name} is not a metric the service writes");
        };
        assert_eq!(dimensions, *expected, "{where_}: {name}'s dimensions");
    };

    let mut watched = Vec::new();
    for (alarm_name, alarm) in template.resources_of_type("AWS::CloudWatch::Alarm") {
        for metric in alarm_metrics(alarm) {
            let namespace = metric["Namespace"].as_str().unwrap();
            let name = metric["MetricName"].as_str().unwrap();
            watched.push(format!("{namespace}/{name}"));
            if namespace != common::metrics::NAMESPACE {
                continue;
            }
            let dimensions = one_or_many(&metric["Dimensions"]);
            let stack = dimensions
                .iter()
                .find(|d| d["Name"].as_str() == Some(common::metrics::STACK_DIMENSION))
                .unwrap_or_else(|| panic!("{alarm_name}: {name} without its stack"));
            assert_eq!(reference(&stack["Value"]), Some("AWS::StackName"));
            let names = dimensions
                .iter()
                .map(|d| d["Name"].as_str().unwrap().to_owned())
                .collect();
            check(alarm_name, name, names);
        }
    }
    for wanted in [
        "AWS/SQS/ApproximateNumberOfMessagesVisible",
        "CrmWebhooks/Deliveries",
        "AWS/SQS/ApproximateAgeOfOldestMessage",
        "AWS/Lambda/Errors",
        "CrmWebhooks/DeliveriesRecovered",
        "CrmWebhooks/EventsRecovered",
    ] {
        assert!(watched.iter().any(|w| w == wanted), "no alarm on {wanted}");
    }
    let errors: Vec<Option<&str>> = template
        .resources_of_type("AWS::CloudWatch::Alarm")
        .flat_map(|(_, alarm)| alarm_metrics(alarm))
        .filter(|metric| metric["MetricName"].as_str() == Some("Errors"))
        .map(|metric| reference(&one_or_many(&metric["Dimensions"])[0]["Value"]))
        .collect();
    assert_eq!(errors, [Some("WorkerFunction"), Some("SweeperFunction")]);

    // The dashboard's body: JSON once CloudFormation has substituted its ${...}.
    let (_, dashboard) = template
        .resources_of_type("AWS::CloudWatch::Dashboard")
        .next()
        .expect("a dashboard");
    let body = match &dashboard["Properties"]["DashboardBody"] {
        Value::Tagged(tagged) if tagged.tag == "Sub" => tagged.value.as_str().unwrap(),
        other => panic!("DashboardBody is not a !Sub: {other:?}"),
    };
    let substituted = regex_lite_sub(body);
    let body: serde_json::Value = serde_json::from_str(&substituted).expect("the body is JSON");
    let mut shown = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        let mut previous: Vec<serde_json::Value> = Vec::new();
        for row in widget["properties"]["metrics"].as_array().unwrap() {
            // "..." repeats the previous row's namespace, name and dimensions.
            let mut row: Vec<serde_json::Value> = row.as_array().unwrap().clone();
            if row[0] == "..." {
                let tail: Vec<serde_json::Value> = row[1..].to_vec();
                let keep = previous.len() - tail.iter().filter(|v| v.is_string()).count();
                row = previous[..keep].iter().cloned().chain(tail).collect();
            }
            let strings: Vec<String> = row
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            if strings[0] == common::metrics::NAMESPACE {
                let dimensions = strings[2..].iter().step_by(2).cloned().collect();
                check("the dashboard", &strings[1], dimensions);
                shown.push(strings[1].clone());
            }
            previous = row;
        }
    }
    for (name, _) in &emitted {
        assert!(
            shown.iter().any(|s| s == name),
            "the dashboard does not show {name}"
        );
    }
}

/// `${Name}` and `${Name.Attr}` of a `!Sub` replaced by a plain word, as CloudFormation would
/// put a value there.
fn regex_lite_sub(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str("value");
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}
