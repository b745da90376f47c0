// Probe of what a JVM program sees; runs itself again as a child JVM.
import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;

public class Probe {
    static String prefix = "";

    interface Check { String run() throws Exception; }

    static void out(String key, Check check) {
        String value;
        try {
            value = check.run();
        } catch (NoSuchFileException e) {
            value = "ERR:ENOENT";
        } catch (Exception e) {
            value = "ERR:" + e.getClass().getSimpleName();
        }
        System.out.println(prefix + key + "=" + value);
        System.out.flush();
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0) prefix = args[0];
        out("env", () -> System.getenv("POD_NAME"));
        out("file", () -> Files.readString(Path.of("/app/config/message.txt")).trim());
        out("notfound", () -> { Files.readAllBytes(Path.of("/app/secrets/token")); return "opened"; });
        out("dns", () -> InetAddress.getByName("backend.pod.test").getHostAddress());
        out("tcp", () -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("backend.pod.test", 7001), 10000);
                s.setSoTimeout(10000);
                s.getOutputStream().write("tcp-ping".getBytes(StandardCharsets.UTF_8));
                byte[] buf = new byte[64];
                int n = s.getInputStream().read(buf);
                return new String(buf, 0, n, StandardCharsets.UTF_8);
            }
        });
        out("udp", () -> {
            try (DatagramSocket s = new DatagramSocket()) {
                s.setSoTimeout(10000);
                byte[] ping = "udp-ping".getBytes(StandardCharsets.UTF_8);
                s.send(new DatagramPacket(ping, ping.length, InetAddress.getByName("backend.pod.test"), 7002));
                DatagramPacket reply = new DatagramPacket(new byte[64], 64);
                s.receive(reply);
                return new String(reply.getData(), 0, reply.getLength(), StandardCharsets.UTF_8);
            }
        });
        if (prefix.isEmpty()) {
            String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
            Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), "Probe", "child.")
                .inheritIO().start();
            if (p.waitFor() != 0) System.exit(1);
        }
    }
}
