package cohort.interop;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A rebalance-lab member on the Java client: consumes the lab's probe records
 * and prints, as JSON lines in the lab's format, every record its application
 * receives ({"D":[partition,seq,produced,t]}) and every partition it is given
 * or gives up ({"O":{...}}), times in microseconds. Closes gracefully when
 * stdin closes.
 *
 * Usage: LabMember BOOTSTRAP GROUP TOPIC PROTOCOL ASSIGNOR ID NAME INSTANCE_OR_EMPTY REVOKE_MS [key=value ...]
 * PROTOCOL: eager (classic, range), cooperative (classic, cooperative-sticky), consumer.
 */
public final class LabMember {
  static long now() {
    return ChronoUnit.MICROS.between(Instant.EPOCH, Instant.now());
  }

  static synchronized void out(String line) {
    System.out.println(line);
    System.out.flush();
  }

  static void own(int id, String kind, Collection<TopicPartition> ps) {
    StringBuilder sb = new StringBuilder();
    for (TopicPartition p : ps) {
      if (sb.length() > 0) sb.append(',');
      sb.append(p.partition());
    }
    out("{\"O\":{\"member\":" + id + ",\"t\":" + now() + ",\"kind\":\"" + kind + "\",\"partitions\":[" + sb + "]}}");
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], group = args[1], topic = args[2], protocol = args[3], assignor = args[4];
    int id = Integer.parseInt(args[5]);
    String name = args[6], instance = args[7];
    long revokeMs = Long.parseLong(args[8]);
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("group.id", group);
    p.put("client.id", name);
    p.put("auto.offset.reset", "earliest");
    if (protocol.equals("consumer")) {
      p.put("group.protocol", "consumer");
      p.put("group.remote.assignor", assignor);
    } else {
      p.put("group.protocol", "classic");
      p.put("partition.assignment.strategy", protocol.equals("cooperative")
          ? CooperativeStickyAssignor.class.getName() : RangeAssignor.class.getName());
    }
    if (!instance.isEmpty()) p.put("group.instance.id", instance);
    Set<String> classicOnly = Set.of("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy");
    for (int i = 9; i < args.length; i++) {
      String[] kv = args[i].split("=", 2);
      if (protocol.equals("consumer") && classicOnly.contains(kv[0])) continue;
      p.put(kv[0], kv[1]);
    }
    KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
      public void onPartitionsRevoked(Collection<TopicPartition> ps) {
        if (ps.isEmpty()) return;
        own(id, "RevokeStarted", ps);
        if (revokeMs > 0) {
          try { Thread.sleep(revokeMs); } catch (InterruptedException ignored) { }
        }
        // As auto-commit does on revocation: commit what was consumed.
        try { c.commitSync(); } catch (Exception ignored) { }
        own(id, "Revoked", ps);
      }
      public void onPartitionsAssigned(Collection<TopicPartition> ps) {
        own(id, "Assigned", ps);
      }
      public void onPartitionsLost(Collection<TopicPartition> ps) {
        if (!ps.isEmpty()) own(id, "Lost", ps);
      }
    });
    Thread stdin = new Thread(() -> {
      try { while (System.in.read() >= 0) { } } catch (Exception ignored) { }
      c.wakeup();
    });
    stdin.setDaemon(true);
    stdin.start();
    try {
      while (true) {
        ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(50));
        long t = now();
        for (ConsumerRecord<byte[], byte[]> r : recs) {
          byte[] v = r.value();
          if (v == null || v.length != 16) continue;
          ByteBuffer b = ByteBuffer.wrap(v);
          long seq = b.getLong(), produced = b.getLong();
          out("{\"D\":[" + r.partition() + "," + seq + "," + produced + "," + t + "]}");
        }
      }
    } catch (org.apache.kafka.common.errors.WakeupException e) {
      // closing
    } finally {
      c.close();
    }
  }
}
