using System.Runtime.InteropServices;
using System.Text;
using CloudMirrorFs.Tests.Support;
using Microsoft.Win32.SafeHandles;

namespace CloudMirrorFs.Mount.Tests;

/// <summary>Every operation through a real mount (a child cmfs process), then unmount and restore from the remote alone.</summary>
[TestClass]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class MountOperationsTests
{
    [TestMethod]
    public async Task EveryOperation_ThroughTheMount_BehavesAsPosixAndRestoresFromTheRemote()
    {
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        string m = drive.MountPath;

        // create, write, read
        byte[] hello = Encoding.UTF8.GetBytes("hello, mirrored world\n");
        File.WriteAllBytes(Path.Combine(m, "a.txt"), hello);
        CollectionAssert.AreEqual(hello, File.ReadAllBytes(Path.Combine(m, "a.txt")));

        // append
        using (var s = new FileStream(Path.Combine(m, "a.txt"), FileMode.Append))
        {
            s.Write("more\n"u8);
        }
        Assert.AreEqual("hello, mirrored world\nmore\n", File.ReadAllText(Path.Combine(m, "a.txt")));

        // truncate: grow (zeros), shrink
        using (var s = new FileStream(Path.Combine(m, "a.txt"), FileMode.Open))
        {
            s.SetLength(100);
        }
        byte[] grown = File.ReadAllBytes(Path.Combine(m, "a.txt"));
        Assert.AreEqual(100, grown.Length);
        Assert.IsTrue(grown.Skip(27).All(b => b == 0), "a grown file reads zeros past the old end");
        using (var s = new FileStream(Path.Combine(m, "a.txt"), FileMode.Open))
        {
            s.SetLength(5);
        }
        Assert.AreEqual("hello", File.ReadAllText(Path.Combine(m, "a.txt")));
        File.WriteAllText(Path.Combine(m, "a.txt"), "rewritten"); // O_TRUNC
        Assert.AreEqual("rewritten", File.ReadAllText(Path.Combine(m, "a.txt")));

        // sparse files, one past 2 GiB
        byte[] tail = RandomBytes(4096, 1);
        string sparse = Path.Combine(m, "sparse.bin");
        using (var h = File.OpenHandle(sparse, FileMode.CreateNew, FileAccess.ReadWrite))
        {
            RandomAccess.Write(h, tail, (3L << 30) + 123);
            RandomAccess.FlushToDisk(h);
        }
        Assert.AreEqual((3L << 30) + 123 + 4096, new FileInfo(sparse).Length);
        using (var h = File.OpenHandle(sparse, FileMode.Open, FileAccess.Read))
        {
            byte[] back = new byte[4096];
            Assert.AreEqual(4096, RandomAccess.Read(h, back, (3L << 30) + 123));
            CollectionAssert.AreEqual(tail, back);
            byte[] hole = new byte[65536];
            Assert.AreEqual(hole.Length, RandomAccess.Read(h, hole, 2L << 30));
            Assert.IsTrue(hole.All(b => b == 0), "a hole reads zeros");
        }

        // directories: mkdir, nested files, rename of a directory, rmdir (empty and not)
        Directory.CreateDirectory(Path.Combine(m, "d1", "d2"));
        File.WriteAllText(Path.Combine(m, "d1", "d2", "f"), "deep");
        Directory.Move(Path.Combine(m, "d1"), Path.Combine(m, "moved"));
        Assert.AreEqual("deep", File.ReadAllText(Path.Combine(m, "moved", "d2", "f")));
        Assert.IsFalse(Directory.Exists(Path.Combine(m, "d1")));
        Assert.ThrowsExactly<IOException>(() => Directory.Delete(Path.Combine(m, "moved")), "rmdir of a non-empty directory fails");
        Directory.CreateDirectory(Path.Combine(m, "empty"));
        Directory.Delete(Path.Combine(m, "empty"));
        Assert.IsFalse(Directory.Exists(Path.Combine(m, "empty")));

        // rename over an existing file
        File.WriteAllText(Path.Combine(m, "old"), "old");
        File.WriteAllText(Path.Combine(m, "new"), "new");
        File.Move(Path.Combine(m, "new"), Path.Combine(m, "old"), overwrite: true);
        Assert.AreEqual("new", File.ReadAllText(Path.Combine(m, "old")));
        Assert.IsFalse(File.Exists(Path.Combine(m, "new")));

        // rename of an open file: the handle follows it
        using (var open = new FileStream(Path.Combine(m, "open.txt"), FileMode.Create, FileAccess.ReadWrite))
        {
            open.Write("before "u8);
            open.Flush();
            File.Move(Path.Combine(m, "open.txt"), Path.Combine(m, "moved", "renamed.txt"));
            open.Write("after"u8);
        }
        Assert.AreEqual("before after", File.ReadAllText(Path.Combine(m, "moved", "renamed.txt")));

        // unlink of an open file: gone from the tree, alive through the handle until closed
        using (var open = new FileStream(Path.Combine(m, "doomed"), FileMode.Create, FileAccess.ReadWrite))
        {
            open.Write("still here"u8);
            open.Flush();
            File.Delete(Path.Combine(m, "doomed"));
            Assert.IsFalse(File.Exists(Path.Combine(m, "doomed")));
            Assert.IsFalse(Directory.EnumerateFileSystemEntries(m).Any(e => e.Contains("cmfs-unlinked", StringComparison.Ordinal)), "the hidden folder is never listed");
            open.Write(" and writable"u8);
            open.Position = 0;
            byte[] back = new byte[64];
            int n = open.Read(back);
            Assert.AreEqual("still here and writable", Encoding.UTF8.GetString(back, 0, n));
        }
        // FUSE sends RELEASE after close(2) has returned: give it a moment.
        string hidden = Path.Combine(drive.LocalPath, ".cmfs-unlinked");
        for (int i = 0; i < 50 && Directory.Exists(hidden) && Directory.EnumerateFileSystemEntries(hidden).Any(); i++)
        {
            await Task.Delay(100);
        }
        Assert.IsFalse(Directory.Exists(hidden) && Directory.EnumerateFileSystemEntries(hidden).Any(), "the unlinked file is deleted at its last close");

        // rename over an open file: the replaced file stays readable through its handle
        File.WriteAllText(Path.Combine(m, "victim"), "victim data");
        using (var open = new FileStream(Path.Combine(m, "victim"), FileMode.Open, FileAccess.Read))
        {
            File.WriteAllText(Path.Combine(m, "replacement"), "replacement");
            File.Move(Path.Combine(m, "replacement"), Path.Combine(m, "victim"), overwrite: true);
            byte[] back = new byte[64];
            int n = open.Read(back);
            Assert.AreEqual("victim data", Encoding.UTF8.GetString(back, 0, n));
        }
        Assert.AreEqual("replacement", File.ReadAllText(Path.Combine(m, "victim")));

        // chmod, utimens
        File.SetUnixFileMode(Path.Combine(m, "old"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(Path.Combine(m, "old")));
        var when = new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(Path.Combine(m, "old"), when);
        Assert.AreEqual(when, File.GetLastWriteTimeUtc(Path.Combine(m, "old")));

        // permissions on a private mount by root: the kernel's mode checks are off (they all pass for root), so
        // access(2) is answered by cmfs and execute is still refused where no x bit is set
        Assert.AreEqual(0u, Geteuid(), "the mount tests run as root");
        string mountLine = File.ReadAllLines("/proc/self/mounts").Single(l => l.Split(' ')[1] == m);
        Assert.IsFalse(mountLine.Contains("default_permissions", StringComparison.Ordinal), mountLine);
        File.WriteAllText(Path.Combine(m, "script"), "#!/bin/sh\necho ran\n");
        File.SetUnixFileMode(Path.Combine(m, "script"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.AreEqual(-1, Access(Path.Combine(m, "script"), 1 /* X_OK */));
        Assert.AreEqual(13, Marshal.GetLastPInvokeError(), "access(X_OK) of a file without x bits: EACCES");
        Assert.AreEqual(0, Access(Path.Combine(m, "script"), 4 | 2 /* R_OK | W_OK */), "root may read and write a 0600 file");
        Assert.AreEqual(126, await ShellExitCodeAsync("exec \"$0\"", Path.Combine(m, "script")), "exec of a file without x bits: EACCES (sh exits 126)");
        File.SetUnixFileMode(Path.Combine(m, "script"), UnixFileMode.None);
        Assert.AreEqual("#!/bin/sh\necho ran\n", File.ReadAllText(Path.Combine(m, "script")), "root reads a 0000 file");
        File.SetUnixFileMode(Path.Combine(m, "script"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        Assert.AreEqual(0, Access(Path.Combine(m, "script"), 1 /* X_OK */), "access(X_OK) once an x bit is set");
        Assert.AreEqual(0, await ShellExitCodeAsync("exec \"$0\" > /dev/null", Path.Combine(m, "script")), "and it runs");
        Assert.AreEqual(-1, Access(Path.Combine(m, "no-such-file"), 0 /* F_OK */));
        Assert.AreEqual(2, Marshal.GetLastPInvokeError(), "access(F_OK) of a missing file: ENOENT");
        File.Delete(Path.Combine(m, "script"));

        // symlink, readlink
        File.CreateSymbolicLink(Path.Combine(m, "link"), "moved/d2/f");
        Assert.AreEqual("moved/d2/f", new FileInfo(Path.Combine(m, "link")).LinkTarget);
        Assert.AreEqual("deep", File.ReadAllText(Path.Combine(m, "link")), "a relative link resolves inside the drive");
        File.CreateSymbolicLink(Path.Combine(m, "dangling"), "../nowhere/at/all");
        Assert.AreEqual("../nowhere/at/all", new FileInfo(Path.Combine(m, "dangling")).LinkTarget);

        // hard links are refused with EPERM
        Assert.AreEqual(-1, Link(Path.Combine(m, "old"), Path.Combine(m, "hard")));
        Assert.AreEqual(1, Marshal.GetLastPInvokeError(), "link(2) fails with EPERM");

        // fallocate: a hole punched, a range zeroed, a range zeroed past the end (which grows the file); reserving
        // space past the end alone is refused. The same calls on an array give the bytes to expect.
        const int keepSize = 0x01, punchHole = 0x02, zeroRange = 0x10;
        byte[] image = RandomBytes(4 << 20, 4);
        string img = Path.Combine(m, "image.bin");
        File.WriteAllBytes(img, image);
        long allocatedBefore = Allocation.BytesOf(Path.Combine(drive.LocalPath, "image.bin"));
        using (SafeFileHandle h = File.OpenHandle(img, FileMode.Open, FileAccess.ReadWrite))
        {
            Assert.AreEqual(0, Fallocate(h, punchHole | keepSize, 300_000, 2 << 20), $"punch a hole: errno {Marshal.GetLastPInvokeError()}");
            Array.Clear(image, 300_000, 2 << 20);
            Assert.AreEqual(0, Fallocate(h, zeroRange | keepSize, (7 << 19) + 5, 100), $"zero a range: errno {Marshal.GetLastPInvokeError()}");
            Array.Clear(image, (7 << 19) + 5, 100);
            Assert.AreEqual(0, Fallocate(h, zeroRange, (4 << 20) - 10, 1 << 20), $"zero a range past the end: errno {Marshal.GetLastPInvokeError()}");
            Array.Clear(image, (4 << 20) - 10, 10);
            Array.Resize(ref image, (5 << 20) - 10);
            Assert.AreEqual(-1, Fallocate(h, keepSize, 0, 8 << 20));
            Assert.AreEqual(95, Marshal.GetLastPInvokeError(), "FALLOC_FL_KEEP_SIZE alone: EOPNOTSUPP");
        }
        CollectionAssert.AreEqual(image, File.ReadAllBytes(img), "the file after fallocate reads as the array does");
        long allocatedAfter = Allocation.BytesOf(Path.Combine(drive.LocalPath, "image.bin"));
        Assert.IsTrue(allocatedAfter <= allocatedBefore + (1 << 20) - (3 << 19),
            $"the punched hole frees space on the local facet: {allocatedBefore} bytes allocated before, {allocatedAfter} after");

        // statfs
        var df = new DriveInfo(m);
        Assert.IsTrue(df.TotalSize > 0 && df.AvailableFreeSpace > 0, "statfs reports the local facet's space");

        // fsync of a file and of a directory
        using (var s = new FileStream(Path.Combine(m, "synced"), FileMode.Create))
        {
            s.Write(RandomBytes(100_000, 2));
            s.Flush(flushToDisk: true);
        }
        int fd = Open(Path.Combine(m, "moved"), 0 /* O_RDONLY */);
        Assert.IsTrue(fd >= 0, "open a directory");
        Assert.AreEqual(0, Fsync(fd), "fsync of a directory");
        _ = Close(fd);

        // what the mount shows is what the local facet holds
        SortedDictionary<string, string> seen = Drive.Snapshot(m);
        Drive.AssertSameTree(seen, Drive.Snapshot(drive.LocalPath, rel => rel.StartsWith(".cmfs-unlinked", StringComparison.Ordinal)), "mount vs local facet");

        // a second mount of the same volume is refused while this one runs
        (int code, string output, _) = await drive.CmfsAsync("mount");
        Assert.AreEqual(1, code, output);
        StringAssert.Contains(output, "in use");

        // status over the control socket, drain, then SIGTERM unmounts within 10 s
        (code, output, _) = await drive.CmfsAsync("status", "--json");
        Assert.AreEqual(0, code, output);
        StringAssert.Contains(output, "\"remote\"");
        (code, output, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, output);
        TimeSpan stopped = await drive.StopAsync();
        Assert.IsTrue(stopped < TimeSpan.FromSeconds(10), $"SIGTERM unmounted in {stopped.TotalSeconds:0.0} s");

        // the remote alone, restored onto an empty folder, is the tree that was written
        string restored = Path.Combine(drive.Dir, "restored");
        (code, output, _) = await drive.CmfsAsync("restore", "--facet", "remote", "--to", restored);
        Assert.AreEqual(0, code, output);
        Drive.AssertSameTree(seen, Drive.Snapshot(restored), "restore from the remote vs what the mount showed");
    }

    [TestMethod]
    public async Task Fsync_OfOneFile_WaitsForThatFileOnly_NotForAnotherFilesLargeWrite()
    {
        // fsync through the mount was a volume-wide barrier: a program fsyncing a 4 KiB write beside a 2 GiB copy
        // waited for the copy's bytes to reach the disk (p50 3.5-6.1 ms, max 160-234 ms; raw ext4 0.2-0.6 ms).
        // The local facet's page cache shows which files an fsync flushed; on a disk, as a tmpfs never flushes.
        await using Drive drive = Drive.Create(under: "/var/tmp");
        await drive.MountAsync();
        byte[] chunk = RandomBytes(1 << 20, 11);
        // CreateNew, not Create: .NET's Create truncates, and ext4 itself then flushes a file truncated to nothing
        // and written again at its next journal commit (auto_da_alloc), which any fsync starts.
        using (var big = new FileStream(Path.Combine(drive.MountPath, "big"), FileMode.CreateNew))
        using (var small = new FileStream(Path.Combine(drive.MountPath, "small"), FileMode.CreateNew))
        {
            for (int i = 0; i < 64; i++)
            {
                big.Write(chunk);
            }
            big.Flush(flushToDisk: false);
            small.Write(chunk.AsSpan(0, 4096));
            small.Flush(flushToDisk: false);
            string bigLocal = Path.Combine(drive.LocalPath, "big"), smallLocal = Path.Combine(drive.LocalPath, "small");
            long bigDirty = CloudMirrorFs.Tests.Support.PageCache.DirtyPages(bigLocal);
            Assert.IsTrue(bigDirty > 0, "the premise: the large file's bytes are in the local facet's cache only");
            Assert.AreEqual(1, CloudMirrorFs.Tests.Support.PageCache.DirtyPages(smallLocal), "the premise: so is the small file's page");

            small.Flush(flushToDisk: true); // fsync(2)

            Assert.AreEqual(0, CloudMirrorFs.Tests.Support.PageCache.DirtyPages(smallLocal), "the fsync'd file is on the disk");
            long left = CloudMirrorFs.Tests.Support.PageCache.DirtyPages(bigLocal);
            Assert.IsTrue(left > bigDirty / 2, $"the other file was left to the OS: {left} of its {bigDirty} dirty pages still dirty");

            big.Flush(flushToDisk: true);
            Assert.AreEqual(0, CloudMirrorFs.Tests.Support.PageCache.DirtyPages(bigLocal), "its own fsync flushes it");
        }
        (int code, string output, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, output);
    }

    [TestMethod]
    public async Task Mount_Sighup_TheTerminalClosed_UnmountsCleanly()
    {
        // A foreground mount whose terminal or SSH session goes away gets SIGHUP. It used to end the process on the
        // spot, as a kill does: a dead mount point and crash recovery at the next start. Now it stops as for SIGTERM.
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        byte[] data = RandomBytes(1 << 20, 4);
        File.WriteAllBytes(Path.Combine(drive.MountPath, "kept.bin"), data);
        await drive.StopAsync(signal: 1);
        StringAssert.Contains(drive.Output, "unmounted; the queue is saved");
        Assert.IsFalse(File.Exists(Path.Combine(drive.StateDir, "running")), "the volume closed cleanly (no crash recovery at the next start)");
        await drive.MountAsync();
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(drive.MountPath, "kept.bin")));
    }

    [TestMethod]
    public async Task Mount_AfterSigkill_ClearsTheDeadMountAndServesEverythingAcknowledged()
    {
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        byte[] data = RandomBytes(3 << 20, 3);
        File.WriteAllBytes(Path.Combine(drive.MountPath, "kept.bin"), data); // acknowledged, never fsync'd
        await drive.KillAsync();
        Assert.IsTrue(Drive.IsMounted(drive.MountPath), "a killed FUSE process leaves its dead mount behind");
        await drive.MountAsync();
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(drive.MountPath, "kept.bin")));
        (int code, string output, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, output);
        await drive.StopAsync();
        string restored = Path.Combine(drive.Dir, "restored");
        (code, output, _) = await drive.CmfsAsync("restore", "--facet", "remote", "--to", restored);
        Assert.AreEqual(0, code, output);
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(restored, "kept.bin")));
    }

    [TestMethod]
    public async Task OpenAndClose_CostTheDaemonOneRequestEach_CloseSendsNoFlush()
    {
        // FUSE sends a flush at every close(2) unless the file system said once that it has none. Ours would do
        // nothing with it (close is not a barrier), so it is not implemented: a close costs the daemon only the
        // release. Each request the kernel sends is one read(2) of /dev/fuse by the daemon, counted in syscr.
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        string path = Path.Combine(drive.MountPath, "opened.txt");
        File.WriteAllText(path, "open me");
        const int cycles = 400;
        for (int i = 0; i < 20; i++)
        {
            Close(Open(path, 0)); // the first close of the mount gets libfuse's ENOSYS; the kernel stops asking
        }
        long before = DaemonReadCalls(drive.ProcessId!.Value);
        for (int i = 0; i < cycles; i++)
        {
            int fd = Open(path, 0 /* O_RDONLY */);
            Assert.IsTrue(fd >= 0, $"open: errno {Marshal.GetLastPInvokeError()}");
            Assert.AreEqual(0, Close(fd), $"close: errno {Marshal.GetLastPInvokeError()}");
        }
        long requests = DaemonReadCalls(drive.ProcessId!.Value) - before;
        // open and release: 2 per cycle (with a flush, 3), plus a few lookups and getattrs as cached entries expire.
        Assert.IsTrue(requests >= 2 * cycles, $"{requests} requests for {cycles} open+close: the count misses requests");
        Assert.IsTrue(requests < 2.5 * cycles, $"{requests} requests for {cycles} open+close: close sends more than a release");
    }

    [TestMethod]
    public async Task ListingWithAttributes_CostsABatchOfRequests_NotALookupPerEntry()
    {
        // readdirplus: a listing hands the kernel every entry's attributes, so ls -l (a listing, then an lstat per
        // entry) needs no lookup per entry. The sizes and kinds it shows are the files'.
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        string dir = Path.Combine(drive.MountPath, "many");
        Directory.CreateDirectory(dir);
        const int files = 300;
        for (int i = 0; i < files; i++)
        {
            File.WriteAllBytes(Path.Combine(dir, $"f{i:D3}.bin"), new byte[i * 7]);
        }
        Directory.CreateDirectory(Path.Combine(dir, "sub"));
        File.CreateSymbolicLink(Path.Combine(dir, "link"), "f001.bin");
        await Task.Delay(1500); // the entries and attributes the creates left in the kernel's cache time out (1 s)

        long before = DaemonReadCalls(drive.ProcessId!.Value);
        var seen = new Dictionary<string, (long Length, bool Directory, bool Link)>();
        foreach (FileSystemInfo info in new DirectoryInfo(dir).EnumerateFileSystemInfos())
        {
            bool isLink = info.LinkTarget is not null;
            seen[info.Name] = (info is FileInfo f && !isLink ? f.Length : -1, info is DirectoryInfo, isLink);
        }
        long requests = DaemonReadCalls(drive.ProcessId!.Value) - before;

        Assert.AreEqual(files + 2, seen.Count);
        for (int i = 0; i < files; i++)
        {
            Assert.AreEqual((i * 7L, false, false), seen[$"f{i:D3}.bin"], $"f{i:D3}.bin");
        }
        Assert.IsTrue(seen["sub"].Directory);
        Assert.IsTrue(seen["link"].Link);
        // opendir, a few readdirplus batches, releasedir, the link's readlink, the folder's own lookup and getattr.
        Assert.IsTrue(requests < 30, $"{requests} requests to list {files + 2} entries with their attributes: a lookup per entry");
    }

    [TestMethod]
    public async Task MissingNames_AreCachedAsMissing_AndAppearAtOnceWhenMade()
    {
        // A lookup of a missing name is answered with a negative entry that the kernel keeps for the entry timeout:
        // probing the same missing paths again costs the daemon nothing. Whatever then makes the name through the
        // drive (create, mkdir, rename, symlink) is seen at once.
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        string m = drive.MountPath;
        string[] missing = ["a.h", "b.h", "sub", "moved", "link"];
        foreach (string name in missing)
        {
            Assert.IsFalse(Path.Exists(Path.Combine(m, name)));
        }
        long before = DaemonReadCalls(drive.ProcessId!.Value);
        for (int i = 0; i < 100; i++)
        {
            foreach (string name in missing)
            {
                Assert.IsFalse(Path.Exists(Path.Combine(m, name)), name);
            }
        }
        long requests = DaemonReadCalls(drive.ProcessId!.Value) - before;
        // 500 probes: at most a new lookup per name each time the 1 s entry timeout runs out.
        Assert.IsTrue(requests < 50, $"{requests} requests for 500 probes of 5 missing names: the misses are not cached");

        File.WriteAllText(Path.Combine(m, "a.h"), "made");
        Assert.AreEqual("made", File.ReadAllText(Path.Combine(m, "a.h")), "a created name is seen at once");
        Directory.CreateDirectory(Path.Combine(m, "sub"));
        Assert.IsTrue(Directory.Exists(Path.Combine(m, "sub")), "a made directory is seen at once");
        File.WriteAllText(Path.Combine(m, "src.txt"), "renamed");
        File.Move(Path.Combine(m, "src.txt"), Path.Combine(m, "moved"));
        Assert.AreEqual("renamed", File.ReadAllText(Path.Combine(m, "moved")), "a rename's target is seen at once");
        File.CreateSymbolicLink(Path.Combine(m, "link"), "a.h");
        Assert.AreEqual("a.h", new FileInfo(Path.Combine(m, "link")).LinkTarget, "a made link is seen at once");
        File.Delete(Path.Combine(m, "a.h"));
        Assert.IsFalse(File.Exists(Path.Combine(m, "a.h")), "an unlinked name is missing at once");
        Assert.IsFalse(Path.Exists(Path.Combine(m, "b.h")));
    }

    [TestMethod]
    public async Task Stat_ReportsTheSpaceAFileTakes_AndItsChangeTime()
    {
        // st_blocks is the local file's: du(1) sees a sparse file's holes as free. st_ctime is the last change of the
        // node, data or attributes: a chmod moves it, a utimens into the past does not move it back.
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        string sparse = Path.Combine(drive.MountPath, "sparse.bin");
        using (var h = File.OpenHandle(sparse, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.SetLength(h, 4L << 30);
            RandomAccess.Write(h, RandomBytes(64 << 10, 5), 1L << 30);
        }
        (long blocks, long changed, long modified) = await StatAsync(sparse);
        Assert.IsTrue(blocks * 512 >= 64 << 10, $"{blocks} blocks: less than the 64 KiB written");
        Assert.IsTrue(blocks * 512 < 1 << 20, $"{blocks} blocks for 64 KiB written into 4 GiB of holes: counted from the size");
        string dense = Path.Combine(drive.MountPath, "dense.bin");
        File.WriteAllBytes(dense, RandomBytes(3 << 20, 6));
        Assert.IsTrue((await StatAsync(dense)).Blocks * 512 >= 3 << 20, "a dense file takes its size");

        long before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        File.SetLastWriteTimeUtc(sparse, new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc));
        File.SetUnixFileMode(sparse, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        (_, changed, modified) = await StatAsync(sparse);
        Assert.AreEqual(new DateTimeOffset(2001, 2, 3, 4, 5, 6, TimeSpan.Zero).ToUnixTimeSeconds(), modified, "mtime as set");
        Assert.IsTrue(changed >= before - 1, $"ctime {changed}: not moved by the chmod (now {before}); the mtime is {modified}");
    }

    /// <summary>stat(1)'s st_blocks (512-byte units), st_ctime and st_mtime in seconds.</summary>
    private static async Task<(long Blocks, long Changed, long Modified)> StatAsync(string path)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%b %B %Z %Y", path]) { RedirectStandardOutput = true })!;
        string output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.AreEqual(0, p.ExitCode, $"stat {path}");
        long[] f = [.. output.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(x => long.Parse(x, System.Globalization.CultureInfo.InvariantCulture))];
        Assert.AreEqual(512, f[1], "stat's block unit");
        return (f[0], f[2], f[3]);
    }

    /// <summary>
    /// read(2) calls the process made so far (<c>/proc/PID/io</c>'s <c>syscr</c>), once the count has held still for
    /// 100 ms: the kernel sends a release after close(2) has returned, so one may still be on its way.
    /// </summary>
    private static long DaemonReadCalls(int pid)
    {
        long last = ReadCalls(pid);
        for (int i = 0; i < 50; i++)
        {
            Thread.Sleep(100);
            long now = ReadCalls(pid);
            if (now == last)
            {
                return now;
            }
            last = now;
        }
        return last;
    }

    private static long ReadCalls(int pid)
        => long.Parse(File.ReadAllLines($"/proc/{pid}/io").First(l => l.StartsWith("syscr:", StringComparison.Ordinal))["syscr:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);

    internal static byte[] RandomBytes(int length, int seed)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string from, string to);

    private static async Task<int> ShellExitCodeAsync(string script, string arg)
    {
        using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("sh", ["-c", script, arg]) { RedirectStandardError = true })!;
        await p.WaitForExitAsync();
        return p.ExitCode;
    }

    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Access(string path, int mode);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint Geteuid();

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int Fallocate(SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
