package cohort.connect;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.Map;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;

/** Appends as records arrive; Connect commits the consumer offsets after flush. */
public class LinesSinkTask extends SinkTask {
    private OutputStream out;
    private String file;

    @Override public String version() { return "1"; }

    @Override
    public void start(Map<String, String> props) {
        file = props.get("file");
        try {
            out = new FileOutputStream(file, true);
        } catch (IOException e) {
            throw new ConnectException("opening " + file, e);
        }
    }

    @Override
    public void put(Collection<SinkRecord> records) {
        try {
            for (SinkRecord r : records) {
                out.write((r.value() + "\n").getBytes(StandardCharsets.UTF_8));
            }
            out.flush();
        } catch (IOException e) {
            throw new ConnectException("writing " + file, e);
        }
    }

    @Override
    public void flush(Map<TopicPartition, OffsetAndMetadata> offsets) {}

    @Override
    public void stop() {
        try {
            if (out != null) out.close();
        } catch (IOException ignored) {
        }
    }
}
