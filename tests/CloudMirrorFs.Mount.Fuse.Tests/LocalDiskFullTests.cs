using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using CloudMirrorFs.Tests.Support;

namespace CloudMirrorFs.Mount.Tests;

/// <summary>
/// The local facet's disk fills under a mounted drive (a real 16 MiB tmpfs, so ENOSPC comes from the kernel). The
/// program writing is told ENOSPC, the drive goes on, nothing acknowledged is lost, and the remote ends up as the
/// local facet is, byte for byte, including the part of the failed write that reached the disk.
/// </summary>
[TestClass]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class LocalDiskFullTests
{
    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task Fallocate_ReservesTheSpaceOnTheLocalFacet_AndOnAFullDiskSaysEnospc_LeavingTheFileAsItWas()
    {
        // posix_fallocate promises that writes into the range will not fail for lack of space. Mode 0 used to set
        // the length only: a program that preallocated could still meet ENOSPC in the middle of its writes.
        using var disk = new SmallDisk(16);
        await using Drive drive = Drive.Create(localPath: Path.Combine(disk.Path, "local"));
        await drive.MountAsync();
        string file = Path.Combine(drive.MountPath, "reserved.bin");
        string local = Path.Combine(drive.LocalPath, "reserved.bin");
        using (SafeFileHandle h = File.OpenHandle(file, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            Assert.AreEqual(0, Fallocate(h, 0, 0, 6 << 20), $"fallocate of 6 MiB: errno {Marshal.GetLastPInvokeError()}");
            Assert.AreEqual(6L << 20, RandomAccess.GetLength(h), "mode 0 extends the length");
            Assert.IsTrue(Allocation.BytesOf(local) >= 6L << 20, $"and reserves the space on the local facet: {Allocation.BytesOf(local)} bytes allocated");

            // What is reserved is the file's: 6 MiB of writes into it succeed, though the rest of the disk is filled.
            using (var ballast = new FileStream(Path.Combine(disk.Path, "ballast"), FileMode.CreateNew))
            {
                try
                {
                    ballast.Write(new byte[16 << 20]);
                }
                catch (IOException)
                {
                    // the disk is full now
                }
            }
            byte[] data = RandomNumberGenerator.GetBytes(6 << 20);
            RandomAccess.Write(h, data, 0);

            Assert.AreEqual(-1, Fallocate(h, 0, 0, 32 << 20), "a reservation the disk cannot hold fails");
            Assert.AreEqual(28, Marshal.GetLastPInvokeError(), "with ENOSPC");
            Assert.AreEqual(6L << 20, RandomAccess.GetLength(h), "and leaves the length as it was");
            File.Delete(Path.Combine(disk.Path, "ballast"));
            byte[] back = new byte[data.Length];
            Assert.AreEqual(data.Length, RandomAccess.Read(h, back, 0));
            CollectionAssert.AreEqual(data, back);
        }
        (int code, string output, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, output);
        (code, output, _) = await drive.CmfsAsync("status");
        Assert.AreEqual(0, code, output);
        StringAssert.DoesNotMatch(output, new System.Text.RegularExpressions.Regex("NotSynchronised|Offline"), "the local facet stayed in service");
    }

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int Fallocate(SafeFileHandle fd, int mode, long offset, long length);

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
