package cohort.connect;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

/** Reads whole lines after the stored position; a line still being written waits. */
public class LinesSourceTask extends SourceTask {
    private String file;
    private String topic;
    private long position;

    @Override public String version() { return "1"; }

    @Override
    public void start(Map<String, String> props) {
        file = props.get("file");
        topic = props.get("topic");
        Map<String, Object> stored = context.offsetStorageReader().offset(Map.of("file", file));
        position = stored == null ? 0 : ((Number) stored.get("position")).longValue();
    }

    @Override
    public List<SourceRecord> poll() throws InterruptedException {
        List<SourceRecord> out = new ArrayList<>();
        try (RandomAccessFile in = new RandomAccessFile(file, "r")) {
            long length = in.length();
            if (length > position) {
                byte[] data = new byte[(int) Math.min(length - position, 1 << 20)];
                in.seek(position);
                in.readFully(data);
                int start = 0;
                for (int i = 0; i < data.length && out.size() < 1000; i++) {
                    if (data[i] != '\n') continue;
                    String line = new String(data, start, i - start, StandardCharsets.UTF_8);
                    long next = position + i + 1;
                    out.add(new SourceRecord(Map.of("file", file), Map.of("position", next),
                            topic, null, null, null, Schema.STRING_SCHEMA, line));
                    start = i + 1;
                }
                position += start;
            }
        } catch (IOException e) {
            throw new ConnectException("reading " + file, e);
        }
        if (out.isEmpty()) {
            Thread.sleep(200);
        }
        return out;
    }

    @Override public void stop() {}
}
