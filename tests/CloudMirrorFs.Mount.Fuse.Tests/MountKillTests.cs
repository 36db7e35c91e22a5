namespace CloudMirrorFs.Mount.Tests;

/// <summary>The mount process killed with SIGKILL under a writer that fsyncs: remount, drain, and local, remote and the writer's log agree.</summary>
[TestClass]
public sealed class MountKillTests
{
    private const int Record = 4096;

    [TestMethod]
    public async Task Sigkill_UnderAnFsyncingWriter_LosesNothingAcknowledged()
    {
        await using Drive drive = Drive.Create();
        for (int round = 0; round < 3; round++)
        {
            await drive.MountAsync();
            string[] files = [.. Enumerable.Range(0, 3).Select(i => Path.Combine(drive.MountPath, $"log{i}.bin"))];
            long[] acked = new long[files.Length];
            for (int i = 0; i < files.Length; i++)
            {
                acked[i] = File.Exists(files[i]) ? new FileInfo(files[i]).Length / Record : 0;
            }
            using var stop = new CancellationTokenSource();
            Task writer = Task.Run(() => Write(files, acked, stop.Token));
            await Task.Delay(1500 + (round * 500));
            await drive.KillAsync();
            await stop.CancelAsync();
            await writer;

            await drive.MountAsync();
            for (int i = 0; i < files.Length; i++)
            {
                byte[] content = File.ReadAllBytes(files[i]);
                long records = content.Length / Record;
                Assert.IsTrue(records >= acked[i] && records <= acked[i] + 1,
                    $"round {round}, {Path.GetFileName(files[i])}: {records} records after the kill, {acked[i]} acknowledged");
                Assert.AreEqual(0, content.Length % Record, "no torn record: FUSE writes of 4 KiB are single requests");
                for (long r = 0; r < records; r++)
                {
                    CollectionAssert.AreEqual(RecordBytes(i, r), content.AsSpan((int)(r * Record), Record).ToArray(), $"round {round}, file {i}, record {r}");
                }
                acked[i] = records;
            }
            (int code, string text, _) = await drive.CmfsAsync("drain", "--timeout", "120");
            Assert.AreEqual(0, code, text);
            await drive.StopAsync();
            Assert.IsTrue(acked.Sum() > 0, "the writer wrote something");
        }
        SortedDictionary<string, string> local = Drive.Snapshot(drive.LocalPath);
        string restored = Path.Combine(drive.Dir, "restored");
        (int rc, string output, _) = await drive.CmfsAsync("restore", "--facet", "remote", "--to", restored);
        Assert.AreEqual(0, rc, output);
        Drive.AssertSameTree(local, Drive.Snapshot(restored), "remote (restored) vs local after three kills");
    }

    /// <summary>Appends records round-robin, fsyncing every fourth; counts each write(2) that returned.</summary>
    private static void Write(string[] files, long[] acked, CancellationToken stop)
    {
        var streams = new FileStream?[files.Length];
        try
        {
            for (int i = 0; i < files.Length; i++)
            {
                streams[i] = new FileStream(files[i], FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite, 1);
            }
            for (long n = 0; !stop.IsCancellationRequested; n++)
            {
                int i = (int)(n % files.Length);
                FileStream s = streams[i]!;
                s.Position = acked[i] * Record;
                s.Write(RecordBytes(i, acked[i]));
                acked[i]++;
                if (n % 4 == 3)
                {
                    s.Flush(flushToDisk: true);
                }
            }
        }
        catch (IOException)
        {
            // the mount died under us: what returned before is what counts
        }
        catch (UnauthorizedAccessException)
        {
        }
        foreach (FileStream? s in streams)
        {
            try
            {
                s?.Dispose();
            }
            catch (IOException)
            {
            }
        }
    }

    private static byte[] RecordBytes(int file, long index)
    {
        byte[] b = new byte[Record];
        new Random(HashCode.Combine(file, index)).NextBytes(b);
        BitConverter.TryWriteBytes(b, index);
        return b;
    }
}
