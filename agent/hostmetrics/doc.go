// Package hostmetrics reads the health of the device an agent runs on — CPU, memory, disk
// and, where the hardware has sensors, the SoC temperature — with gopsutil, and reports it two
// ways: as Prometheus text on the agent's GET /metrics (Collector.WriteMetrics), and, when the
// config key host_metrics.interval is set, as one JSON record per interval appended to a topic
// of the agent's own log (default "_samsa.host"), so a fleet's health travels with its data
// (tiering uploads it, samsa-cloud can query it, any Kafka client can consume it).
//
// A Sample holds:
//
//	cpu          logical CPUs, seconds per mode since boot (user, system, idle, iowait, ...),
//	             busy percent since the previous sample, load averages
//	memory       total, available and used bytes; swap total and used
//	disk         size, free and used bytes of the data directory's filesystem; bytes read and
//	             written per block device since boot (loop and ram devices left out), which on
//	             an SD card shows the wear the agent causes
//	temperatures one reading per sensor in °C: hwmon sensors, or the thermal zones
//	             (/sys/class/thermal, e.g. "cpu-thermal" on a Raspberry Pi) where there are none
//	errors       the parts that could not be read, e.g. on a host without /proc/diskstats
//
// A part that cannot be read is left out (and named in Errors) rather than failing the
// sample. The label sets are bounded: at most MaxDevices block devices and MaxSensors sensors.
//
// Metrics (Prometheus text): samsa_host_cpu_count, samsa_host_cpu_seconds_total{mode},
// samsa_host_load1/5/15, samsa_host_memory_{total,available,used}_bytes,
// samsa_host_swap_{total,used}_bytes, samsa_host_filesystem_{size,free}_bytes{path},
// samsa_host_disk_{read,written}_bytes_total{device},
// samsa_host_temperature_celsius{sensor}; with a Publisher also
// samsa_host_metrics_published_total and samsa_host_metrics_publish_errors_total.
//
// The Publisher creates its topic (one partition, 1 MiB segments, the topic defaults for
// retention) when it is missing and appends each sample through commitlog.Log.Append, as a
// produce would: the disk guard refuses it on a full disk like any write (logged once, counted
// as an error, retried at the next interval). Keys are the host name, values the JSON of a
// Sample, record timestamps the sample time.
package hostmetrics
