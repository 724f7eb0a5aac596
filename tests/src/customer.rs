//! A customer's own AWS account on the embedded AWS, set up the way docs/receiving.md tells a customer
//! to: a queue (standard or FIFO), an event bus with a rule to a queue (to read what arrived), and
//! a role that trusts the service's account with their Puck account id as `ExternalId`.
//!
//! moto keeps one set of resources per account and picks the account from the caller's access
//! key; assuming a role in the customer's account (moto needs no such role to exist) gives keys
//! that act there, so every resource here lives in `account`, not in the service's account.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The region every customer resource is made in (the local stack's).
pub const REGION: &str = puck_local::provision::LOCAL_REGION;

/// SDK clients acting in one customer account.
pub struct CustomerAccount {
    /// The 12-digit account id.
    pub account: String,
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    iam: aws_sdk_iam::Client,
}

/// A queue: the URL a customer pastes into `destination.queue_url`, and the one the SDK reaches.
#[derive(Debug, Clone)]
pub struct Queue {
    /// `https://sqs.<region>.amazonaws.com/<account>/<name>`.
    pub aws_url: String,
    /// What moto answered to CreateQueue (its own host).
    pub local_url: String,
    /// `arn:aws:sqs:<region>:<account>:<name>`.
    pub arn: String,
}

impl CustomerAccount {
    /// Clients acting in `account` on the moto at `endpoint`.
    pub async fn open(endpoint: &str, account: &str) -> Self {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_sts::config::Credentials::new("test", "test", None, None, "e2e"))
            .load()
            .await;
        let sts = aws_sdk_sts::Client::new(&base);
        let assumed = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/customer-admin"))
            .role_session_name("e2e-customer")
            .send()
            .await
            .expect("AssumeRole into the customer's account");
        let c = assumed.credentials().expect("credentials");
        let creds = aws_sdk_sts::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "e2e-customer",
        );
        let config = base.into_builder().credentials_provider(aws_credential_provider(creds)).build();
        Self {
            account: account.to_owned(),
            sqs: aws_sdk_sqs::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
        }
    }

    /// A role the service may assume: trusts `service_account` when the call carries
    /// `external_id` (the customer's Puck account id), as docs/receiving.md shows. Returns its ARN.
    pub async fn create_role(&self, name: &str, service_account: &str, external_id: &str) -> String {
        let trust = json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{service_account}:root")},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}}
        }]});
        let role = self
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("CreateRole");
        let permissions = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": format!("arn:aws:sqs:*:{}:*", self.account)},
            {"Effect": "Allow", "Action": "events:PutEvents", "Resource": format!("arn:aws:events:*:{}:event-bus/*", self.account)}
        ]});
        let put = self.iam.put_role_policy().role_name(name).policy_name("puck-delivery");
        put.policy_document(permissions.to_string()).send().await.expect("PutRolePolicy");
        role.role().expect("role").arn().to_owned()
    }

    /// A queue; `name` ending in `.fifo` makes a FIFO queue.
    pub async fn create_queue(&self, name: &str) -> Queue {
        let mut call = self.sqs.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            call = call.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let created = call.send().await.expect("CreateQueue");
        Queue {
            aws_url: format!("https://sqs.{REGION}.amazonaws.com/{}/{name}", self.account),
            local_url: created.queue_url().expect("queue url").to_owned(),
            arn: format!("arn:aws:sqs:{REGION}:{}:{name}", self.account),
        }
    }

    /// An event bus whose rule forwards every event of the service's source to `queue`. Returns
    /// the bus ARN.
    pub async fn create_bus_to_queue(&self, bus: &str, queue: &Queue) -> String {
        let created = self.events.create_event_bus().name(bus).send().await.expect("CreateEventBus");
        let pattern = json!({"source": [puck_aws::destinations::EVENT_SOURCE]}).to_string();
        let rule = self.events.put_rule().name(format!("{bus}-to-queue")).event_bus_name(bus).event_pattern(pattern);
        rule.send().await.expect("PutRule");
        let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(&queue.arn).build().expect("target");
        let put = self.events.put_targets().rule(format!("{bus}-to-queue")).event_bus_name(bus).targets(target);
        put.send().await.expect("PutTargets");
        created.event_bus_arn().expect("bus arn").to_owned()
    }

    /// Waits up to `within` for `n` messages on `queue` (received and deleted), with their
    /// attributes.
    pub async fn receive(&self, queue: &Queue, n: usize, within: Duration) -> Vec<Message> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&queue.local_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("ReceiveMessage");
            for m in out.messages() {
                let handle = m.receipt_handle().unwrap_or_default();
                self.sqs.delete_message().queue_url(&queue.local_url).receipt_handle(handle).send().await.ok();
                got.push(m.clone());
            }
        }
        got
    }
}

/// A message's string attributes by name.
pub fn attributes(m: &Message) -> HashMap<String, String> {
    m.message_attributes()
        .map(|a| a.iter().filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned()))).collect())
        .unwrap_or_default()
}

fn aws_credential_provider(creds: aws_sdk_sts::config::Credentials) -> aws_sdk_sts::config::SharedCredentialsProvider {
    aws_sdk_sts::config::SharedCredentialsProvider::new(creds)
}
