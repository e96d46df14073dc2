//! EC2's instance state times at the proxy: moto stops and starts an instance at once and
//! changes a running instance's type, where EC2 takes seconds to stop or start and refuses to
//! change the type of an instance that is not stopped.
//!
//! After a `StopInstances` (or `StartInstances`) that moto accepted, the proxy shows the
//! instance as `stopping` (`pending`) for the configured time, in the call's answer and in
//! every `DescribeInstances` answer, and only then as moto has it (`stopped`, `running`).
//! Meanwhile a `StartInstances` of a stopping instance, and a `ModifyInstanceAttribute` of the
//! instance type of an instance that is not stopped, are refused with EC2's
//! `IncorrectInstanceState`. Every transition goes into a state log, for tests that assert
//! orders and overlaps.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the transitions take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTimes {
    /// `stopping` → `stopped`.
    pub stopping: Duration,
    /// `pending` → `running`.
    pub pending: Duration,
}

impl Default for StateTimes {
    /// EC2's typical times: 30 s to stop, 20 s to start.
    fn default() -> Self {
        Self {
            stopping: Duration::from_secs(30),
            pending: Duration::from_secs(20),
        }
    }
}

/// One state an instance entered, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The instance.
    pub instance: String,
    /// `stopping`, `stopped`, `pending` or `running`.
    pub state: &'static str,
    /// When it entered the state.
    pub at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Transition {
    shown: &'static str,
    code: u16,
    until: Instant,
}

/// The transitions under way, and the log.
#[derive(Debug)]
pub(crate) struct InstanceStates {
    times: StateTimes,
    transitions: Mutex<HashMap<String, Transition>>,
    log: Mutex<Vec<StateChange>>,
}

/// What the proxy must do with an EC2 request before sending it on.
pub(crate) enum Verdict {
    /// Send it on.
    Forward,
    /// Answer EC2's `IncorrectInstanceState` with this message.
    Refuse(String),
    /// Send it on only if moto says the instance is stopped.
    ForwardIfStopped(String),
}

/// The values of the form `body`'s keys that start with `prefix`.
fn params<'a>(body: &'a str, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    body.split('&').filter_map(move |kv| {
        let (k, v) = kv.split_once('=')?;
        k.starts_with(prefix).then_some((k, v))
    })
}

fn instance_ids(body: &str) -> Vec<String> {
    params(body, "InstanceId").map(|(_, v)| v.to_owned()).collect()
}

impl InstanceStates {
    pub(crate) fn new(times: StateTimes) -> Self {
        Self {
            times,
            transitions: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
        }
    }

    /// The transition `id` is in now, if any.
    fn current(&self, id: &str, now: Instant) -> Option<Transition> {
        let mut t = self.transitions.lock().expect("transitions lock");
        match t.get(id) {
            Some(tr) if tr.until > now => Some(*tr),
            Some(_) => {
                t.remove(id);
                None
            }
            None => None,
        }
    }

    /// What to do with `action` before it goes to moto.
    pub(crate) fn before(&self, action: &str, body: &str) -> Verdict {
        let now = Instant::now();
        match action {
            "StartInstances" => {
                for id in instance_ids(body) {
                    if let Some(t) = self.current(&id, now).filter(|t| t.shown == "stopping") {
                        return Verdict::Refuse(format!(
                            "The instance '{id}' is not in a state from which it can be started (it is {}).",
                            t.shown
                        ));
                    }
                }
                Verdict::Forward
            }
            "ModifyInstanceAttribute" => {
                let type_change = params(body, "InstanceType").next().is_some()
                    || params(body, "Attribute").any(|(_, v)| v == "instanceType");
                let Some(id) = instance_ids(body).into_iter().next() else {
                    return Verdict::Forward;
                };
                if !type_change {
                    return Verdict::Forward;
                }
                match self.current(&id, now) {
                    Some(t) => Verdict::Refuse(format!(
                        "The instance '{id}' is not in the 'stopped' state (it is {}).",
                        t.shown
                    )),
                    None => Verdict::ForwardIfStopped(id),
                }
            }
            _ => Verdict::Forward,
        }
    }

    /// Rewrites moto's answer to an accepted `action`: starts the transitions it began, and
    /// shows the instances still in transition as EC2 would.
    pub(crate) fn after(&self, action: &str, request: &str, answer: &str) -> Option<String> {
        let now = Instant::now();
        let began = match action {
            "StopInstances" => Some(("stopping", 64, "stopped", self.times.stopping)),
            "StartInstances" => Some(("pending", 0, "running", self.times.pending)),
            _ => None,
        };
        if let Some((shown, code, settled, takes)) = began {
            let until = now + takes;
            let mut transitions = self.transitions.lock().expect("transitions lock");
            let mut log = self.log.lock().expect("log lock");
            for id in instance_ids(request) {
                transitions.insert(id.clone(), Transition { shown, code, until });
                log.push(StateChange {
                    instance: id.clone(),
                    state: shown,
                    at: now,
                });
                log.push(StateChange {
                    instance: id,
                    state: settled,
                    at: until,
                });
            }
            drop((transitions, log));
            return Some(replace_all_between(
                answer,
                "<currentState>",
                "</currentState>",
                &state_xml(shown, code),
            ));
        }
        if action != "DescribeInstances" {
            return None;
        }
        let live: Vec<(String, Transition)> = {
            let t = self.transitions.lock().expect("transitions lock");
            t.iter()
                .filter(|(_, tr)| tr.until > now)
                .map(|(id, tr)| (id.clone(), *tr))
                .collect()
        };
        if live.is_empty() {
            return None;
        }
        let mut out = answer.to_owned();
        for (id, tr) in live {
            out = replace_state_of(&out, &id, &state_xml(tr.shown, tr.code));
        }
        Some(out)
    }

    /// Every state change so far, in the order they were recorded (a transition's end is
    /// recorded with its start, at the time it is reached).
    pub(crate) fn log(&self) -> Vec<StateChange> {
        self.log.lock().expect("log lock").clone()
    }
}

fn state_xml(name: &str, code: u16) -> String {
    format!("<code>{code}</code><name>{name}</name>")
}

/// Replaces the content of every `open`…`close` element with `inner`.
fn replace_all_between(text: &str, open: &str, close: &str, inner: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let Some(end) = rest[start..].find(close) else { break };
        out.push_str(&rest[..start + open.len()]);
        out.push_str(inner);
        out.push_str(close);
        rest = &rest[start + end + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces the `<instanceState>` of instance `id` (the first one after its `<instanceId>`).
fn replace_state_of(text: &str, id: &str, inner: &str) -> String {
    let marker = format!("<instanceId>{id}</instanceId>");
    let Some(at) = text.find(&marker) else {
        return text.to_owned();
    };
    let (head, tail) = text.split_at(at);
    let (open, close) = ("<instanceState>", "</instanceState>");
    let (Some(s), Some(e)) = (tail.find(open), tail.find(close)) else {
        return text.to_owned();
    };
    if e < s {
        return text.to_owned();
    }
    format!("{head}{}{inner}{}", &tail[..s + open.len()], &tail[e..])
}

/// The state moto reports in a `DescribeInstances` answer for one instance.
pub(crate) fn reported_state(answer: &str) -> Option<&str> {
    let s = answer.find("<instanceState>")?;
    let rest = &answer[s..];
    let n = rest.find("<name>")? + "<name>".len();
    let e = rest[n..].find("</name>")?;
    Some(rest[n..n + e].trim())
}

/// EC2's `IncorrectInstanceState` error.
pub(crate) fn incorrect_state(message: &str) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>IncorrectInstanceState</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy</RequestID></Response>")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCRIBE: &str = "<DescribeInstancesResponse><reservationSet><item><instancesSet>\
        <item><instanceId>i-1</instanceId><imageId>ami</imageId><instanceState><code>80</code><name>stopped</name></instanceState></item>\
        <item><instanceId>i-2</instanceId><instanceState><code>16</code><name>running</name></instanceState></item>\
        </instancesSet></item></reservationSet></DescribeInstancesResponse>";

    #[test]
    fn a_stop_shows_stopping_until_its_time_is_up() {
        let states = InstanceStates::new(StateTimes {
            stopping: Duration::from_millis(200),
            pending: Duration::from_millis(100),
        });
        let stop = "<StopInstancesResponse><instancesSet><item><instanceId>i-1</instanceId>\
            <previousState><code>16</code><name>running</name></previousState>\
            <currentState><code>80</code><name>stopped</name></currentState></item></instancesSet></StopInstancesResponse>";
        let answer = states
            .after("StopInstances", "Action=StopInstances&InstanceId.1=i-1", stop)
            .unwrap();
        assert!(answer.contains("<currentState><code>64</code><name>stopping</name></currentState>"));
        assert!(answer.contains("<previousState><code>16</code><name>running</name></previousState>"));
        let seen = states.after("DescribeInstances", "", DESCRIBE).unwrap();
        assert!(seen.contains(
            "<instanceId>i-1</instanceId><imageId>ami</imageId><instanceState><code>64</code><name>stopping</name>"
        ));
        assert!(seen.contains("<instanceId>i-2</instanceId><instanceState><code>16</code><name>running</name>"));
        // Starting or resizing it meanwhile is refused, as EC2 does.
        assert!(matches!(
            states.before("StartInstances", "InstanceId.1=i-1"),
            Verdict::Refuse(_)
        ));
        assert!(matches!(
            states.before("ModifyInstanceAttribute", "InstanceId=i-1&InstanceType.Value=t3.small"),
            Verdict::Refuse(_)
        ));
        // Other attributes may change on any state; an unknown instance is asked of moto.
        assert!(matches!(
            states.before(
                "ModifyInstanceAttribute",
                "InstanceId=i-1&DisableApiTermination.Value=true"
            ),
            Verdict::Forward
        ));
        assert!(matches!(
            states.before("ModifyInstanceAttribute", "InstanceId=i-9&InstanceType.Value=t3.small"),
            Verdict::ForwardIfStopped(_)
        ));
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            states.after("DescribeInstances", "", DESCRIBE).is_none(),
            "moto's state shows again"
        );
        let log = states.log();
        assert_eq!(log.iter().map(|c| c.state).collect::<Vec<_>>(), ["stopping", "stopped"]);
        assert_eq!(log[1].at - log[0].at, Duration::from_millis(200));
    }

    #[test]
    fn moto_state_is_read_from_a_describe_answer() {
        assert_eq!(reported_state(DESCRIBE), Some("stopped"));
        assert_eq!(reported_state("<x/>"), None);
    }
}
