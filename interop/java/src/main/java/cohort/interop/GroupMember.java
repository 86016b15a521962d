package cohort.interop;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * One consumer-group member, printing what its application sees as JSON lines
 * (the same events as tests/e2e/member.py): assign, revoke, lost, recs, commit.
 *
 * Usage: GroupMember BOOTSTRAP GROUP TOPIC STRATEGY NAME INSTANCE_OR_EMPTY SESSION_MS PROTOCOL
 */
public final class GroupMember {
  static synchronized void emit(String ev, String rest) {
    System.out.println("{\"t\": " + (System.currentTimeMillis() / 1000.0) + ", \"ev\": \"" + ev + "\"" + rest + "}");
    System.out.flush();
  }

  static String parts(Collection<TopicPartition> ps) {
    List<Integer> l = new ArrayList<>();
    for (TopicPartition p : ps) l.add(p.partition());
    Collections.sort(l);
    return ", \"parts\": " + l;
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0], group = args[1], topic = args[2], strategy = args[3], name = args[4];
    String instance = args[5];
    int sessionMs = Integer.parseInt(args[6]);
    String protocol = args[7];
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("group.id", group);
    p.put("client.id", name);
    p.put("enable.auto.commit", "false");
    p.put("auto.offset.reset", "earliest");
    p.put("metadata.max.age.ms", "1000");
    if (protocol.equals("consumer")) {
      p.put("group.protocol", "consumer");
      if (!strategy.isEmpty()) p.put("group.remote.assignor", strategy);
    } else {
      p.put("session.timeout.ms", String.valueOf(sessionMs));
      p.put("heartbeat.interval.ms", "500");
      String assignor = switch (strategy) {
        case "range" -> RangeAssignor.class.getName();
        case "roundrobin" -> RoundRobinAssignor.class.getName();
        case "cooperative-sticky" -> CooperativeStickyAssignor.class.getName();
        case "sticky" -> StickyAssignor.class.getName();
        default -> throw new IllegalArgumentException(strategy);
      };
      p.put("partition.assignment.strategy", assignor);
    }
    if (!instance.isEmpty()) p.put("group.instance.id", instance);

    KafkaConsumer<String, String> c = new KafkaConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    Map<TopicPartition, Long> positions = new HashMap<>();
    CountDownLatch done = new CountDownLatch(1);
    Thread main = Thread.currentThread();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      c.wakeup();
      try { done.await(); } catch (InterruptedException ignored) { }
    }));

    Runnable commitAll = () -> commit(c, positions, null);
    c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
      public void onPartitionsRevoked(Collection<TopicPartition> ps) {
        commit(c, positions, ps);
        for (TopicPartition tp : ps) positions.remove(tp);
        emit("revoke", parts(ps));
      }
      public void onPartitionsAssigned(Collection<TopicPartition> ps) {
        emit("assign", parts(ps));
      }
      public void onPartitionsLost(Collection<TopicPartition> ps) {
        for (TopicPartition tp : ps) positions.remove(tp);
        emit("lost", parts(ps));
      }
    });
    emit("started", "");
    long lastCommit = System.currentTimeMillis();
    try {
      while (true) {
        ConsumerRecords<String, String> recs = c.poll(Duration.ofMillis(100));
        for (TopicPartition tp : recs.partitions()) {
          List<Long> offs = new ArrayList<>();
          for (ConsumerRecord<String, String> r : recs.records(tp)) offs.add(r.offset());
          positions.put(tp, offs.get(offs.size() - 1) + 1);
          emit("recs", ", \"p\": " + tp.partition() + ", \"offs\": " + offs);
        }
        if (System.currentTimeMillis() - lastCommit > 500) {
          commitAll.run();
          lastCommit = System.currentTimeMillis();
        }
      }
    } catch (WakeupException e) {
      // shutting down
    } finally {
      // From here on the application consumes nothing.
      emit("closing", "");
      commitAll.run();
      c.close();
      emit("closed", "");
      done.countDown();
    }
  }

  static void commit(KafkaConsumer<String, String> c, Map<TopicPartition, Long> positions, Collection<TopicPartition> only) {
    Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
    for (Map.Entry<TopicPartition, Long> e : positions.entrySet()) {
      if (only == null || only.contains(e.getKey())) offs.put(e.getKey(), new OffsetAndMetadata(e.getValue()));
    }
    if (offs.isEmpty()) return;
    try {
      c.commitSync(offs);
      StringBuilder sb = new StringBuilder(", \"offs\": [");
      boolean first = true;
      for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offs.entrySet()) {
        if (!first) sb.append(", ");
        sb.append("[").append(e.getKey().partition()).append(", ").append(e.getValue().offset()).append("]");
        first = false;
      }
      emit("commit", sb.append("]").toString());
    } catch (WakeupException w) {
      throw w;
    } catch (Exception ex) {
      emit("commit_failed", ", \"error\": \"" + ex.getClass().getSimpleName() + "\"");
    }
  }
}
