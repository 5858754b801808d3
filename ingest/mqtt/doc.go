// Package mqtt bridges an MQTT broker and the commit log, at least once in both directions,
// with eclipse paho (MQTT 3.1.1).
//
// A [Bridge] is one MQTT connection: a persistent session (clean session off, a fixed client
// id), so that the broker keeps the bridge's subscriptions and the QoS 1 and 2 messages it has
// not acknowledged while the bridge is away.
//
// # Ingest: MQTT to topics
//
// Subscribe rules map messages to records. The first rule whose filter matches a message's
// topic renders its topic and key templates (see template.go: "{mqtt_topic}", "{1}", "{2}",
// ...; the default key "{mqtt_topic}" keeps each device's messages in order in one partition,
// chosen with Kafka's murmur2 partitioner). The record's value is the payload, its timestamp the
// time of receipt, and its headers mqtt.topic, mqtt.qos ("0", "1", "2") and mqtt.retain ("true",
// "false"). Records are batched per partition until Linger passes or MaxBatchBytes is reached,
// compressed (lz4 by default), and appended in-process as real RecordBatches.
//
// A QoS 1 or 2 message is acknowledged to the broker (paho's manual acks) only once the high
// watermark covers its record: durable under the agent's fsync policy (with fsync: always,
// after the fdatasync). Acknowledgements go out in the order the messages arrived. When the log
// refuses writes (the disk guard, a failed disk) the bridge retries the append with backoff and
// acknowledges nothing meanwhile, so the broker keeps the messages; the in-flight bounds
// (MaxInFlight, MaxInFlightBytes) then stop the bridge from reading more: paho's handler waits,
// the socket fills, and nothing is buffered without limit. After a crash, a lost connection or a
// restart, the broker delivers the unacknowledged messages again: records may be duplicated,
// never lost, and the first copies of one MQTT topic's messages keep their order.
//
// A message that can never become a record (no rule matches it, its topic renders to a name
// Kafka refuses, it is larger than max.message.bytes) is acknowledged, counted in
// samsa_mqtt_dropped_total and logged. A topic that does not exist is created with the agent's
// default partition count (AutoCreateTopics), or else waited for.
//
// # Egress: topics to MQTT
//
// Publish rules send the records of a topic to MQTT topics rendered from a template ("{key}",
// "{topic}", "{partition}", "{offset}"), at the rule's QoS (1 by default), in offset order per
// partition. After a lost connection the bridge publishes again from the last record the broker
// acknowledged, so records may repeat (at least once, not exactly once), and one publish paho
// was holding when the connection dropped may go out on the new connection ahead of the records
// published again. The progress is the committed offsets of the consumer group "samsa-mqtt-<name>"
// (GroupID) in the agent's own group coordinator, committed only after the broker acknowledged
// the records (PUBACK at QoS 1), so a restart resumes after the last acknowledged record and does
// not send it again. See egress.go.
//
// # Broker settings
//
// Mosquitto's defaults limit a client to 20 QoS 1/2 messages in flight (max_inflight_messages)
// and drop messages beyond 1000 queued for an offline client (max_queued_messages). With
// acknowledgements waiting for durable appends, raise the first (e.g. to the bridge's
// max_in_flight) for throughput, and the second (or max_queued_bytes) to what the gateway must
// hold while samsa is down: a message the broker drops is lost before the bridge sees it.
// set_tcp_nodelay true avoids Nagle delays on the broker's small packets (PUBACKs, and
// deliveries when traffic is light).
package mqtt
