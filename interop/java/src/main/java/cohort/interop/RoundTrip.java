package cohort.interop;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

/**
 * Creates a topic, produces keyed records with the default (idempotent) producer,
 * consumes every one back with manual assignment, checks offsets and ListOffsets,
 * and prints one JSON line. Exits non-zero on any mismatch.
 *
 * Usage: RoundTrip BOOTSTRAP TOPIC COUNT PARTITIONS
 */
public final class RoundTrip {
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String topic = args[1];
    int count = Integer.parseInt(args[2]);
    int partitions = Integer.parseInt(args[3]);
    Properties common = new Properties();
    common.put("bootstrap.servers", bootstrap);

    try (Admin admin = Admin.create(common)) {
      admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
    }

    Properties pp = new Properties();
    pp.putAll(common);
    pp.put("acks", "all");
    pp.put("enable.idempotence", "true");
    pp.put("linger.ms", "5");
    Map<Integer, List<long[]>> acked = new HashMap<>();
    Map<String, String> sent = new HashMap<>();
    long firstTimestamp = System.currentTimeMillis();
    try (Producer<String, String> producer = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
      List<Future<RecordMetadata>> futures = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        futures.add(producer.send(new ProducerRecord<>(topic, "k" + i, "value-" + i)));
        sent.put("k" + i, "value-" + i);
      }
      producer.flush();
      for (Future<RecordMetadata> f : futures) {
        RecordMetadata md = f.get(30, TimeUnit.SECONDS);
        acked.computeIfAbsent(md.partition(), k -> new ArrayList<>()).add(new long[] {md.offset()});
      }
    }

    Properties cp = new Properties();
    cp.putAll(common);
    cp.put("enable.auto.commit", "false");
    List<TopicPartition> tps = new ArrayList<>();
    for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
    int consumed = 0;
    List<String> problems = new ArrayList<>();
    try (Consumer<String, String> consumer = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
      consumer.assign(tps);
      consumer.seekToBeginning(tps);
      Map<Integer, Long> next = new HashMap<>();
      long deadline = System.currentTimeMillis() + 60_000;
      while (consumed < count && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
          long expected = next.getOrDefault(r.partition(), 0L);
          if (r.offset() != expected) problems.add("partition " + r.partition() + " offset " + r.offset() + " expected " + expected);
          next.put(r.partition(), r.offset() + 1);
          if (!r.value().equals(sent.get(r.key()))) problems.add("wrong value for " + r.key());
          consumed++;
        }
      }
    }

    List<Long> earliest = new ArrayList<>();
    List<Long> latest = new ArrayList<>();
    boolean byTimestampFound;
    try (Admin admin = Admin.create(common)) {
      Map<TopicPartition, OffsetSpec> e = new HashMap<>(), l = new HashMap<>(), t = new HashMap<>();
      for (TopicPartition tp : tps) {
        e.put(tp, OffsetSpec.earliest());
        l.put(tp, OffsetSpec.latest());
        t.put(tp, OffsetSpec.forTimestamp(firstTimestamp - 1000));
      }
      var er = admin.listOffsets(e).all().get(30, TimeUnit.SECONDS);
      var lr = admin.listOffsets(l).all().get(30, TimeUnit.SECONDS);
      var tr = admin.listOffsets(t).all().get(30, TimeUnit.SECONDS);
      for (TopicPartition tp : tps) {
        earliest.add(er.get(tp).offset());
        latest.add(lr.get(tp).offset());
        int n = acked.getOrDefault(tp.partition(), List.of()).size();
        if (lr.get(tp).offset() != n) problems.add("latest for " + tp + " is " + lr.get(tp).offset() + ", acked " + n);
      }
      byTimestampFound = tr.values().stream().allMatch(x -> x.offset() == 0 || x.offset() == -1)
          && tr.values().stream().anyMatch(x -> x.offset() == 0);
    }

    int ackedCount = acked.values().stream().mapToInt(List::size).sum();
    if (consumed != count) problems.add("consumed " + consumed + " of " + count);
    System.out.println(String.format(
        "{\"acked\": %d, \"consumed\": %d, \"earliest\": %s, \"latest\": %s, \"by_timestamp_found\": %s, \"problems\": %d}",
        ackedCount, consumed, earliest, latest, byTimestampFound, problems.size()));
    for (String p : problems.subList(0, Math.min(10, problems.size()))) System.err.println(p);
    System.exit(problems.isEmpty() ? 0 : 1);
  }
}
