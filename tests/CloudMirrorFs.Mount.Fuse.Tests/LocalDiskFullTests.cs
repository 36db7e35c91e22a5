using System.Security.Cryptography;
using CloudMirrorFs.Tests.Support;

namespace CloudMirrorFs.Mount.Tests;

/// <summary>
/// The local facet's disk fills under a mounted drive (a real 16 MiB tmpfs, so ENOSPC comes from the kernel). The
/// program writing is told ENOSPC, the drive goes on, nothing acknowledged is lost, and the remote ends up as the
/// local facet is, byte for byte, including the part of the failed write that reached the disk.
/// </summary>
[TestClass]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LocalDiskFullTests
{
    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task LocalDiskFull_TheWriterGetsEnospc_TheDriveGoesOn_AndTheRemoteMatchesTheLocal()
    {
        using var disk = new SmallDisk(16);
        await using Drive drive = Drive.Create(localPath: Path.Combine(disk.Path, "local"));
        await drive.MountAsync();
        string m = drive.MountPath;
        byte[] kept = RandomNumberGenerator.GetBytes(3 << 20);
        File.WriteAllBytes(Path.Combine(m, "kept.bin"), kept);

        // 1 MiB writes until the disk is full: every write that returned is acknowledged.
        var acknowledged = new MemoryStream();
        IOException? full = null;
        using (var fs = new FileStream(Path.Combine(m, "big.bin"), FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 0))
        {
            for (int i = 0; i < 64 && full is null; i++)
            {
                byte[] chunk = RandomNumberGenerator.GetBytes(1 << 20);
                try
                {
                    fs.Write(chunk);
                    acknowledged.Write(chunk);
                }
                catch (IOException e)
                {
                    full = e;
                }
            }
        }
        Assert.IsNotNull(full, "16 MiB took 64 MiB of writes");
        Assert.AreEqual(28, full.HResult, $"ENOSPC expected: {full.Message}");
        Assert.IsTrue(acknowledged.Length >= 4 << 20, $"only {acknowledged.Length} bytes fitted");

        // The drive goes on: what was acknowledged reads back, and the remote gets what the local facet holds.
        CollectionAssert.AreEqual(kept, File.ReadAllBytes(Path.Combine(m, "kept.bin")));
        byte[] big = File.ReadAllBytes(Path.Combine(m, "big.bin"));
        Assert.IsTrue(big.Length >= acknowledged.Length, $"big.bin is {big.Length} bytes, {acknowledged.Length} were acknowledged");
        CollectionAssert.AreEqual(acknowledged.ToArray(), big.AsSpan(0, (int)acknowledged.Length).ToArray(), "the acknowledged bytes");
        (int code, string output, string error) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, output + error);
        (code, output, error) = await drive.CmfsAsync("verify", "--facet", "remote");
        Assert.AreEqual(0, code, $"the remote differs from the local facet after the failed write: {output}{error}");

        // Space freed: writing works again.
        File.Delete(Path.Combine(m, "big.bin"));
        byte[] after = RandomNumberGenerator.GetBytes(6 << 20);
        File.WriteAllBytes(Path.Combine(m, "after.bin"), after);
        CollectionAssert.AreEqual(after, File.ReadAllBytes(Path.Combine(m, "after.bin")));

        (code, output, error) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, output + error);
        var final = Drive.Snapshot(m);
        await drive.StopAsync();
        string restored = Path.Combine(drive.Dir, "restored");
        (code, output, error) = await drive.CmfsAsync("restore", "--facet", "remote", "--to", restored);
        Assert.AreEqual(0, code, output + error);
        Drive.AssertSameTree(final, Drive.Snapshot(restored), "the remote, restored, vs the drive after the disk filled and was freed");
    }
}
