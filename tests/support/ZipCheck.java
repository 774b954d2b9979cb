// Reads every member of a zip with java.util.zip.ZipFile (what Hadoop's FileUtil.unZip
// uses), checks each one's CRC-32 and size, and prints "entries N bytes B".
import java.io.InputStream;
import java.util.Enumeration;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

public class ZipCheck {
    public static void main(String[] args) throws Exception {
        long entries = 0, bytes = 0;
        byte[] buf = new byte[1 << 16];
        try (ZipFile zip = new ZipFile(args[0])) {
            Enumeration<? extends ZipEntry> all = zip.entries();
            while (all.hasMoreElements()) {
                ZipEntry entry = all.nextElement();
                CRC32 crc = new CRC32();
                long size = 0;
                try (InputStream in = zip.getInputStream(entry)) {
                    for (int n; (n = in.read(buf)) > 0; size += n) {
                        crc.update(buf, 0, n);
                    }
                }
                if (crc.getValue() != entry.getCrc() || size != entry.getSize()) {
                    System.err.println("bad member " + entry.getName());
                    System.exit(1);
                }
                entries++;
                bytes += size;
            }
        }
        System.out.println("entries " + entries + " bytes " + bytes);
    }
}
