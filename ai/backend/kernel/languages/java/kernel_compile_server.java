// Warm javac for the Java kernel: compiling in a JVM that stays up (and gets JIT-compiled)
// takes a fraction of a fresh `javac` run. Protocol, one request per line on stdin:
//   <output dir> TAB <source file>
// answer on stdout: the diagnostics (javac's own format), then "KRB-JAVAC <0|1>" (1 = success).
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.List;

public class kernel_compile_server {
    public static void main(String[] args) throws Exception {
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        PrintWriter out = new PrintWriter(System.out, true);
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split("\t", 2);
            if (parts.length != 2) { out.println("KRB-JAVAC 0"); continue; }
            StringWriter diagnostics = new StringWriter();
            var files = javac.getStandardFileManager(null, null, null);
            var units = files.getJavaFileObjects(parts[1]);
            boolean ok = javac.getTask(new PrintWriter(diagnostics), files, null,
                List.of("-d", parts[0], "-encoding", "UTF-8", "-proc:none"), null, units).call();
            files.close();
            out.print(diagnostics);
            out.println("KRB-JAVAC " + (ok ? 1 : 0));
        }
    }
}
