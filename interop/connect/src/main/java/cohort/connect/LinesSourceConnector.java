package cohort.connect;

import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.source.SourceConnector;

/**
 * Copies the lines of a file into a topic, one record per line, and resumes
 * from the byte position Connect stored in its offsets topic. Kafka's own
 * FileStreamSourceConnector does the same, but connect-file 4.4.0 is not on
 * Maven Central and 4.3.1's does not run on the 4.4 runtime.
 */
public class LinesSourceConnector extends SourceConnector {
    static final ConfigDef CONFIG = new ConfigDef()
            .define("file", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "the file to read")
            .define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "the topic to write");

    private Map<String, String> props;

    @Override public String version() { return "1"; }
    @Override public void start(Map<String, String> props) { this.props = props; }
    @Override public Class<? extends Task> taskClass() { return LinesSourceTask.class; }
    @Override public List<Map<String, String>> taskConfigs(int maxTasks) { return List.of(props); }
    @Override public void stop() {}
    @Override public ConfigDef config() { return CONFIG; }
}
