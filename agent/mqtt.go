package agent

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/samsa-io/samsa/ingest/mqtt"
)

// mqttShutdownTimeout bounds how long the bridges take to stop within Shutdown: appending and
// acknowledging what they hold, committing egress offsets. What is left unacknowledged the
// MQTT broker delivers again after the restart.
const mqttShutdownTimeout = 10 * time.Second

// startMQTT starts the bridges of the mqtt: block, after the commit log and the group
// coordinator (egress offsets) are open. A broker that cannot be reached is retried in the
// background, not an error.
func (a *Agent) startMQTT() error {
	for _, bc := range a.cfg.MQTT.Bridges {
		o := bc.Options()
		o.Store, o.Groups = a.store, a.groups
		o.AutoCreateTopics, o.DefaultPartitions = a.cfg.AutoCreateTopics, a.cfg.DefaultPartitions
		o.Logger = a.log
		if share := a.budget.MQTTBytes(); share > 0 {
			// memory.max_bytes: the bridges share the MQTT part of the budget.
			perBridge := max(share/int64(len(a.cfg.MQTT.Bridges)), mqtt.MinInFlightBytes)
			if o.MaxInFlightBytes == 0 {
				o.MaxInFlightBytes = mqtt.DefaultMaxInFlightBytes
			}
			if o.MaxInFlightBytes > perBridge {
				a.log.Info("memory budget lowers an MQTT bridge's max_in_flight_bytes", "bridge", o.Name,
					"configured", o.MaxInFlightBytes, "limit", perBridge)
				o.MaxInFlightBytes = perBridge
			}
		}
		b, err := mqtt.New(o)
		if err == nil {
			err = b.Start()
		}
		if err != nil {
			a.stopMQTT()
			return fmt.Errorf("config key %q: %w", mqttBridgesKey, err)
		}
		a.bridges = append(a.bridges, b)
	}
	return nil
}

// stopMQTT closes the bridges (in parallel), before the group coordinator and the store close.
func (a *Agent) stopMQTT() {
	if len(a.bridges) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), mqttShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, b := range a.bridges {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Close(ctx); err != nil {
				a.log.Warn("mqtt bridge did not stop cleanly", "component", "mqtt", "bridge", b.Name(), "err", err)
			}
		}()
	}
	wg.Wait()
}

// writeMQTTMetrics writes samsa_mqtt_* (bridges are set before the agent is ready and never
// change afterwards).
func (a *Agent) writeMQTTMetrics(w io.Writer) {
	if a.ready.Load() {
		mqtt.WriteMetrics(w, a.bridges)
	}
}
