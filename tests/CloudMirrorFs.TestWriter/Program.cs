using System.Text;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Volume;

// Usage: TestWriter STATEDIR LOCALDIR REMOTEDIR MEMORYLIMIT LOG SEED [replicate|no-replicate [REMOTEKIND [mixed|generations]]]
// In "generations" mode it rewrites the 8 blocks of gen.bin in order, generation 1, 2, ... (each block filled with
// the generation number), paced, so that any image of the volume shows blocks 0..k-1 at g and k..7 at g-1.
// Writes until killed. After each acknowledged operation it appends one line to LOG (one write() per line, no
// buffering), so every logged line is an operation the volume acknowledged before the kill:
//   W id offset length seed     a data write; the bytes are Pattern(seed, length)
//   C id path                   file created
//   R id from to                file renamed
//   D id path                   file deleted
//   S                           a barrier (fsync) completed
//   z id offset length          a range is about to be zeroed (logged before the call: it may be in flight at the kill)
//   Z id offset length          the range was zeroed (acknowledged); the length does not change
if (args.Length is < 6 or > 9)
{
    Console.Error.WriteLine("usage: TestWriter STATEDIR LOCALDIR REMOTEDIR MEMORYLIMIT LOG SEED [replicate|no-replicate [REMOTEKIND [mixed|generations]]]");
    return 2;
}
var options = new VolumeOptions
{
    Name = "crash",
    StateDir = args[0],
    BlockSize = 64 * 1024,
    Queue = new QueueOptions { MemoryLimit = long.Parse(args[3]), SegmentSize = 4 << 20 },
    Facets =
    [
        new FacetOptions { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = args[1] },
        new FacetOptions
        {
            Name = "remote", Role = FacetRole.Remote, Kind = args.Length >= 8 ? args[7] : "directory", Path = args[2],
            // Cloud kinds take their settings from CMFS_TEST_REMOTE_<KEY> variables (the test passes them).
            Settings = Environment.GetEnvironmentVariables().Keys.Cast<string>()
                .Where(k => k.StartsWith("CMFS_TEST_REMOTE_", StringComparison.Ordinal))
                .ToDictionary(k => k["CMFS_TEST_REMOTE_".Length..], k => Environment.GetEnvironmentVariable(k)!),
        },
    ],
};
FacetFactory.CloudStores = o => CloudMirrorFs.Cloud.CloudStores.Create(o, (value, _) => value);
var rnd = new Random(int.Parse(args[5]));
await using MirrorVolume volume = await MirrorVolume.OpenAsync(options, runtime: new VolumeRuntimeOptions { Replicate = args.Length >= 7 && args[6] == "replicate" });
using var log = new FileStream(args[4], FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
void Log(string line) => log.Write(Encoding.UTF8.GetBytes(line + "\n"));
Console.Out.WriteLine("ready");
Console.Out.Flush();

if (args.Length == 9 && args[8] == "generations")
{
    long gen = await volume.CreateFileAsync("gen.bin");
    byte[] block = new byte[options.BlockSize];
    for (int g = 1; g <= 250; g++)
    {
        for (int b = 0; b < 8; b++)
        {
            Array.Fill(block, (byte)g);
            await volume.WriteAsync(gen, (long)b * block.Length, block);
            Log($"G {g} {b}");
            await Task.Delay(3);
        }
    }
    await Task.Delay(Timeout.Infinite);
}

var files = new List<(long Id, string Path, long Length)>();
int created = 0;
for (long op = 0; ; op++)
{
    int pick = rnd.Next(100);
    if (files.Count < 3 || pick < 4)
    {
        string path = $"f{created++}";
        long id = await volume.CreateFileAsync(path);
        files.Add((id, path, 0));
        Log($"C {id} {path}");
    }
    else if (pick < 6)
    {
        int i = rnd.Next(files.Count);
        string to = $"r{created++}";
        await volume.RenameAsync(files[i].Path, to);
        files[i] = files[i] with { Path = to };
        Log($"R {files[i].Id} {files[i].Path} {to}");
    }
    else if (pick < 7 && files.Count > 3)
    {
        int i = rnd.Next(files.Count);
        await volume.DeleteFileAsync(files[i].Path);
        Log($"D {files[i].Id} {files[i].Path}");
        files.RemoveAt(i);
    }
    else if (pick < 8)
    {
        await volume.SyncAsync();
        Log("S");
    }
    else if (pick < 11 && files.Any(f => f.Length > 0))
    {
        var f = files.Where(f => f.Length > 0).ElementAt(rnd.Next(files.Count(f => f.Length > 0)));
        long offset = rnd.NextInt64(f.Length);
        int length = rnd.Next(1, 300_000);
        Log($"z {f.Id} {offset} {length}");
        await volume.ZeroRangeAsync(f.Id, offset, length, deallocate: rnd.Next(2) == 0);
        Log($"Z {f.Id} {offset} {length}");
    }
    else
    {
        // Appends only, so each range is written once and the local bytes can be checked against the pattern.
        int i = rnd.Next(files.Count);
        int length = rnd.Next(1, 200_000);
        int seed = rnd.Next();
        byte[] data = Pattern(seed, length);
        await volume.WriteAsync(files[i].Id, files[i].Length, data);
        Log($"W {files[i].Id} {files[i].Length} {length} {seed}");
        files[i] = files[i] with { Length = files[i].Length + length };
    }
}

static byte[] Pattern(int seed, int length)
{
    byte[] b = new byte[length];
    new Random(seed).NextBytes(b);
    return b;
}
