package commitlog

// ConfigOpType is an IncrementalAlterConfigs operation; the values are Kafka's.
type ConfigOpType int8

// Config operations.
const (
	OpSet      ConfigOpType = 0
	OpDelete   ConfigOpType = 1
	OpAppend   ConfigOpType = 2
	OpSubtract ConfigOpType = 3
)

// ConfigOp is one change to a topic config.
type ConfigOp struct {
	Key   string
	Op    ConfigOpType
	Value string
}

// ConfigSource says where a config value comes from; the values are Kafka's DescribeConfigs sources.
type ConfigSource int8

// Config sources.
const (
	SourceDynamicTopic ConfigSource = 1 // set on the topic
	SourceStaticBroker ConfigSource = 4 // the agent's topic_defaults
	SourceDefault      ConfigSource = 5 // samsa's default
)

// ConfigEntry is one described topic config.
type ConfigEntry struct {
	Name      string
	Value     string
	Source    ConfigSource
	ReadOnly  bool
	Sensitive bool
	Type      int8 // Kafka ConfigType: 1 BOOLEAN, 2 STRING, 3 INT, 5 LONG, 6 DOUBLE, 7 LIST
	Doc       string
}
