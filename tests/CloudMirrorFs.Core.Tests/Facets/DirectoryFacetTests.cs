using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Tests.Facets;

[TestClass]
public sealed class DirectoryFacetTests : FacetContractTests
{
    private string Root => Path.Combine(Scratch, "root");

    protected override IFacet CreateFacet(string scratchDir) => new DirectoryFacet("dir", Path.Combine(scratchDir, "root"), maxOpenHandles: 4);

    [TestMethod]
    public async Task Files_ArePlainFilesInTheFolder_AndNothingElseIsWritten()
    {
        await Facet.CreateDirectoryAsync("docs", (UnixFileMode)0b111_101_101, default);
        var f = new FileRef(1, "docs/readme.txt");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 0, "plain"u8.ToArray(), default);
        await Facet.FlushAsync(default);
        Assert.AreEqual("plain", File.ReadAllText(Path.Combine(Root, "docs", "readme.txt")));
        CollectionAssert.AreEquivalent(new[] { "docs", Path.Combine("docs", "readme.txt") },
            Directory.EnumerateFileSystemEntries(Root, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(Root, p)).ToArray());
    }

    [TestMethod]
    public async Task Flush_AfterAChangedFolderWasRemoved_Succeeds()
    {
        await Facet.CreateDirectoryAsync("a", (UnixFileMode)0b111_101_101, default);
        await Facet.CreateDirectoryAsync("a/b", (UnixFileMode)0b111_101_101, default);
        await Facet.CreateFileAsync(new FileRef(1, "a/b/f"), (UnixFileMode)0b110_100_100, default);
        Directory.Delete(Path.Combine(Root, "a"), recursive: true); // by another program: "a" and "a/b" are still to flush
        await Facet.FlushAsync(default);
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Flush_WhenAFolderFlushFails_Fails_AndTheNextBarrierFlushesTheFolderAgain()
    {
        await Facet.CreateDirectoryAsync("docs", (UnixFileMode)0b111_101_101, default);
        CloudMirrorFs.Storage.AtomicFile.InjectedFsyncErrno = 5; // EIO
        try
        {
            var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await Facet.FlushAsync(default));
            Assert.AreEqual(MirrorError.IoError, e.Error, e.Message);
            // Still owed: a second barrier flushes the folder again (and fails again, the disk being as it was).
            await Assert.ThrowsExactlyAsync<MirrorException>(async () => await Facet.FlushAsync(default));
        }
        finally
        {
            CloudMirrorFs.Storage.AtomicFile.InjectedFsyncErrno = 0;
        }
        await Facet.FlushAsync(default);
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task ZeroRange_OnATmpfs_PunchesHoles_AndWritesZerosWhereItCannotZeroARange_NeverGrowingTheFile()
    {
        // tmpfs punches holes but has no FALLOC_FL_ZERO_RANGE: the facet falls back to writing zeros, within the
        // file's length only.
        using var disk = new CloudMirrorFs.Tests.Support.SmallDisk(16);
        await using var facet = new DirectoryFacet("tmpfs", Path.Combine(disk.Path, "root"));
        await facet.OpenAsync(default);
        var f = new FileRef(1, "img");
        await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        byte[] data = Bytes(4 << 20, 9);
        await facet.WriteAsync(f, 0, data, default);
        string os = Path.Combine(disk.Path, "root", "img");
        long before = CloudMirrorFs.Tests.Support.Allocation.BytesOf(os);

        await facet.ZeroRangeAsync(f, 1 << 20, 2 << 20, deallocate: true, default);
        Array.Clear(data, 1 << 20, 2 << 20);
        await facet.ZeroRangeAsync(f, 100, 5000, deallocate: false, default);
        Array.Clear(data, 100, 5000);
        await facet.ZeroRangeAsync(f, (4 << 20) - 10, 1 << 20, deallocate: false, default);
        Array.Clear(data, (4 << 20) - 10, 10);

        CollectionAssert.AreEqual(data, await File.ReadAllBytesAsync(os), "the bytes, and the length unchanged by a range past the end");
        long after = CloudMirrorFs.Tests.Support.Allocation.BytesOf(os);
        Assert.IsTrue(after <= before - (2 << 20), $"the punched hole gives its 2 MiB back: {before} bytes allocated before, {after} after");
    }

    [TestMethod]
    public async Task HandleCache_FiftyFilesThroughFourHandles_RoundTrip()
    {
        for (int i = 0; i < 50; i++)
        {
            var f = new FileRef(100 + i, $"f{i}");
            await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
            await Facet.WriteAsync(f, 0, Bytes(1000, i), default);
        }
        await Facet.FlushAsync(default);
        for (int i = 0; i < 50; i++)
        {
            CollectionAssert.AreEqual(Bytes(1000, i), File.ReadAllBytes(Path.Combine(Root, $"f{i}")));
        }
    }

    [TestMethod]
    public async Task Open_MissingFolderWithoutCreate_NamesTheFolder()
    {
        string missing = Path.Combine(Scratch, "nope");
        await using var facet = new DirectoryFacet("x", missing, createIfMissing: false);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await facet.OpenAsync(default));
        Assert.AreEqual(MirrorError.NotFound, e.Error);
        StringAssert.Contains(e.Message, missing);
        StringAssert.Contains(e.Message, "createIfMissing");
    }

    private const UnixFileMode FileMode = (UnixFileMode)0b110_100_100;

    /// <summary>A folder beside the facet's: what a link may point to, and what no operation may change.</summary>
    private string MakeOutside()
    {
        string outside = Path.Combine(Scratch, "outside");
        Directory.CreateDirectory(Path.Combine(outside, "sub"));
        File.WriteAllText(Path.Combine(outside, "victim"), "secret");
        File.WriteAllText(Path.Combine(outside, "sub", "keep"), "kept");
        File.SetLastWriteTimeUtc(Path.Combine(outside, "victim"), new DateTime(2010, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(outside, "victim"), (UnixFileMode)0b110_100_000);
        }
        return outside;
    }

    /// <summary>Every node under a folder (links not followed): kind, bytes, mode, time.</summary>
    private static Dictionary<string, string> Snapshot(string root)
        => Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .ToDictionary(p => Path.GetRelativePath(root, p), p =>
            {
                var i = new FileInfo(p);
                string what = i.LinkTarget is { } t ? $"link {t}" : Directory.Exists(p) ? "dir" : $"file {Convert.ToHexString(File.ReadAllBytes(p))}";
                return $"{what} {(OperatingSystem.IsWindows() || i.LinkTarget is not null ? "" : File.GetUnixFileMode(p))} {i.LastWriteTimeUtc:o}";
            });

    private static async Task<MirrorError> Refused(Func<Task> action) => (await Assert.ThrowsExactlyAsync<MirrorException>(action)).Error;

    [TestMethod]
    [DataRow("abs", null, DisplayName = "absolute link to a folder outside")]
    [DataRow("a/rel", "../../outside", DisplayName = "relative link ../../outside")]
    public async Task Symlink_ToAFolderOutside_NoOperationThroughItEscapes(string link, string? relativeTarget)
    {
        string outside = MakeOutside();
        string target = relativeTarget ?? outside;
        await Facet.CreateDirectoryAsync("a", (UnixFileMode)0b111_101_101, default);
        var own = new FileRef(1, "a/own");
        await Facet.CreateFileAsync(own, FileMode, default);
        await Facet.CreateSymlinkAsync(new FileRef(2, link), target, default);
        Assert.AreEqual(outside, Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.Combine(Root, link))!, target)), "the link really points outside");
        Dictionary<string, string> before = Snapshot(outside);

        Assert.AreEqual(NodeKind.Symlink, (await Facet.StatAsync(link, default))!.Value.Kind);
        Assert.IsNull(await Facet.StatAsync($"{link}/victim", default));
        await Refused(async () => await Facet.ListAsync(link, default));
        await Refused(async () => await Facet.ListAsync($"{link}/sub", default));
        await Refused(async () => await Facet.CreateFileAsync(new FileRef(3, $"{link}/new"), FileMode, default));
        await Refused(async () => await Facet.CreateDirectoryAsync($"{link}/newdir", (UnixFileMode)0b111_101_101, default));
        await Refused(async () => await Facet.CreateSymlinkAsync(new FileRef(4, $"{link}/l2"), "x", default));
        var victim = new FileRef(5, $"{link}/victim");
        await Refused(async () => await Facet.WriteAsync(victim, 0, "evil"u8.ToArray(), default));
        await Refused(async () => await Facet.ReadAsync(victim, 0, new byte[10], default));
        await Refused(async () => await Facet.SetLengthAsync(victim, 0, default));
        await Refused(async () => await Facet.SetAttributesAsync(victim.Path, new AttributeChange { Mode = (UnixFileMode)0b111_111_111, LastWriteUtc = DateTime.UtcNow }, default));
        await Refused(async () => await Facet.ReadLinkAsync($"{link}/victim", default));
        await Refused(async () => await Facet.RenameAsync(victim.Path, "stolen", default));
        await Refused(async () => await Facet.RenameAsync(own.Path, $"{link}/planted", default));
        await Refused(async () => await Facet.DeleteFileAsync(victim, default));
        await Refused(async () => await Facet.DeleteDirectoryAsync($"{link}/sub", default));
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await Facet.DeleteDirectoryAsync(link, default)));
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await Facet.CreateDirectoryAsync(link, (UnixFileMode)0b111_101_101, default)), "a link to a directory is not one");
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await Facet.CreateFileAsync(new FileRef(2, link), FileMode, default)));
        Assert.AreEqual(target, await Facet.ReadLinkAsync(link, default));

        await Facet.DeleteFileAsync(new FileRef(2, link), default);
        Assert.IsNull(await Facet.StatAsync(link, default));
        Assert.IsNotNull(await Facet.StatAsync(own.Path, default), "the facet's own file is where it was");
        CollectionAssert.AreEquivalent(before.ToList(), Snapshot(outside).ToList(), "nothing outside the facet's folder changed");
    }

    [TestMethod]
    public async Task DirectorySeenReal_ThenSwappedForALinkOutside_ThroughTheFacetAtOnce_ByAnotherProgramWithinASecond_IsRefused()
    {
        string outside = MakeOutside();
        Dictionary<string, string> before = Snapshot(outside);
        await Facet.CreateDirectoryAsync("d", (UnixFileMode)0b111_101_101, default);
        await Facet.CreateFileAsync(new FileRef(1, "d/victim"), FileMode, default);
        await Facet.WriteAsync(new FileRef(1, "d/victim"), 0, "own"u8.ToArray(), default); // "d" is now known to be a real directory
        Assert.IsNotNull(await Facet.StatAsync("d/victim", default));

        // Through the facet: the directory moves away and a link to the outside takes its name.
        await Facet.RenameAsync("d", "moved", default);
        await Facet.CreateSymlinkAsync(new FileRef(2, "d"), outside, default);
        Assert.IsNull(await Facet.StatAsync("d/victim", default), "the link is seen at once");
        await Refused(async () => await Facet.CreateFileAsync(new FileRef(3, "d/new"), FileMode, default));
        await Refused(async () => await Facet.DeleteFileAsync(new FileRef(4, "d/victim"), default));

        // By another program, behind the facet's back: refused once the directory's last check is a second old.
        Assert.IsNotNull(await Facet.StatAsync("moved/victim", default));
        string moved = Path.Combine(Root, "moved");
        Directory.Move(moved, Path.Combine(Root, "elsewhere"));
        File.CreateSymbolicLink(moved, outside);
        await Task.Delay(1100);
        Assert.IsNull(await Facet.StatAsync("moved/victim", default), "the planted link is refused, not followed");
        await Refused(async () => await Facet.WriteAsync(new FileRef(5, "moved/victim"), 0, "evil"u8.ToArray(), default));
        await Refused(async () => await Facet.SetAttributesAsync("moved/victim", new AttributeChange { Mode = (UnixFileMode)0b111_111_111 }, default));
        CollectionAssert.AreEquivalent(before.ToList(), Snapshot(outside).ToList(), "nothing outside the facet's folder changed");
    }

    [TestMethod]
    public async Task Symlink_ToAFileOutside_DataAndAttributesNeverReachIt()
    {
        string outside = MakeOutside();
        Dictionary<string, string> before = Snapshot(outside);
        var l = new FileRef(1, "lfile");
        await Facet.CreateSymlinkAsync(l, Path.Combine(outside, "victim"), default);
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await Facet.WriteAsync(l, 0, "evil"u8.ToArray(), default)));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await Facet.ReadAsync(l, 0, new byte[10], default)));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await Facet.SetLengthAsync(l, 0, default)));
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await Facet.CreateFileAsync(l, FileMode, default)));
        await Facet.SetAttributesAsync("lfile", new AttributeChange { Mode = (UnixFileMode)0b111_111_111, LastWriteUtc = DateTime.UtcNow, LastAccessUtc = DateTime.UtcNow }, default);
        await Facet.RenameAsync("lfile", "moved", default);
        Assert.AreEqual(Path.Combine(outside, "victim"), new FileInfo(Path.Combine(Root, "moved")).LinkTarget, "the link moved, as itself");
        await Facet.DeleteFileAsync(l with { Path = "moved" }, default);
        CollectionAssert.AreEquivalent(before.ToList(), Snapshot(outside).ToList(), "the link's target is untouched: bytes, mode and time");
    }

    [TestMethod]
    public async Task Symlink_DanglingIntoOutside_CreatingOverItNeverMakesTheTarget()
    {
        string outside = MakeOutside();
        var l = new FileRef(1, "dangling");
        await Facet.CreateSymlinkAsync(l, "../outside/created", default);
        Assert.AreEqual(NodeKind.Symlink, (await Facet.StatAsync("dangling", default))!.Value.Kind);
        Assert.AreEqual("../outside/created".Length, (await Facet.StatAsync("dangling", default))!.Value.Length);
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await Facet.CreateFileAsync(l, FileMode, default)));
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await Facet.CreateDirectoryAsync("dangling", (UnixFileMode)0b111_101_101, default)));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await Facet.WriteAsync(l, 0, "x"u8.ToArray(), default)));
        Assert.IsFalse(File.Exists(Path.Combine(outside, "created")) || Directory.Exists(Path.Combine(outside, "created")), "nothing was created through the link");
        await Facet.RenameAsync("dangling", "still-dangling", default);
        Assert.AreEqual("../outside/created", await Facet.ReadLinkAsync("still-dangling", default));
        await Facet.DeleteFileAsync(l with { Path = "still-dangling" }, default);
        Assert.AreEqual(0, (await Facet.ListAsync("", default)).Count);
    }

    [TestMethod]
    public async Task Symlink_ToEtc_StatListAndDeleteSeeOnlyTheLink()
    {
        if (OperatingSystem.IsWindows() || !File.Exists("/etc/hostname") && !File.Exists("/etc/passwd"))
        {
            Assert.Inconclusive("needs a Unix /etc");
        }
        string probe = File.Exists("/etc/passwd") ? "passwd" : "hostname";
        DateTime etcTime = Directory.GetLastWriteTimeUtc("/etc");
        // Only looks and unlinks: nothing here may write through the link, whoever runs the tests.
        await Facet.CreateSymlinkAsync(new FileRef(1, "etc"), "/etc", default);
        Assert.AreEqual("/etc", new FileInfo(Path.Combine(Root, "etc")).LinkTarget, "a real link, target verbatim");
        NodeInfo info = (await Facet.StatAsync("etc", default))!.Value;
        Assert.AreEqual((NodeKind.Symlink, 4L), (info.Kind, info.Length));
        Assert.IsNull(await Facet.StatAsync($"etc/{probe}", default), "/etc is not part of the tree");
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await Facet.ListAsync("etc", default)));
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await Facet.DeleteDirectoryAsync("etc", default)));
        var names = (await Facet.ListAsync("", default)).Select(n => (n.Name, n.Kind)).ToList();
        CollectionAssert.AreEqual(new[] { ("etc", NodeKind.Symlink) }, names);
        await Facet.DeleteFileAsync(new FileRef(1, "etc"), default);
        Assert.IsNull(await Facet.StatAsync("etc", default));
        Assert.IsTrue(File.Exists($"/etc/{probe}"));
        Assert.AreEqual(etcTime, Directory.GetLastWriteTimeUtc("/etc"));
    }
}

/// <summary>The contract holds through a simulated link too (a decorator must not change meaning).</summary>
[TestClass]
public sealed class SimulatedLinkContractTests : FacetContractTests
{
    protected override IFacet CreateFacet(string scratchDir)
        => new SimulatedLink(new DirectoryFacet("linked", Path.Combine(scratchDir, "root")), seed: 1) { RoundTrip = TimeSpan.FromMilliseconds(1) };
}

/// <summary>One file's barrier flushes that file, not the others (on a disk: the page cache tells what it flushed).</summary>
[TestClass]
public sealed class DirectoryFacetFileBarrierTests
{
    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task FlushFile_LeavesAnotherFilesBytesInTheCache_TheWholeBarrierFlushesThem()
    {
        // A program fsyncing a small file while another writes a large one must not wait for the large one: the
        // volume-wide flush did, at the disk's speed (fsync p50 of a 4 KiB write beside a 2 GiB dd, through the mount:
        // 3.5-6.1 ms before, about 1 ms after).
        using var disk = new TempDir("barrier", CloudMirrorFs.Tests.Support.PageCache.DiskFolder);
        string dir = disk.Path;
        await using DirectoryFacet facet = await WithLargeFileAsync(dir, mebibytes: 32);
        var big = new FileRef(1, "big");
        var small = new FileRef(2, "small");
        await facet.CreateFileAsync(small, (UnixFileMode)0b110_100_100, default);
        await facet.WriteAsync(small, 0, new byte[4096], default);
        string bigPath = Path.Combine(dir, "big"), smallPath = Path.Combine(dir, "small");
        long bigDirty = CloudMirrorFs.Tests.Support.PageCache.DirtyPages(bigPath);
        Assert.IsTrue(bigDirty > 0 && CloudMirrorFs.Tests.Support.PageCache.DirtyPages(smallPath) == 1,
            $"the premise: both files' writes are in the cache only ({bigDirty} and {CloudMirrorFs.Tests.Support.PageCache.DirtyPages(smallPath)} dirty pages)");

        await facet.FlushFileAsync(small, default);

        Assert.AreEqual(0, CloudMirrorFs.Tests.Support.PageCache.DirtyPages(smallPath), "the file's barrier flushed it");
        Assert.IsTrue(CloudMirrorFs.Tests.Support.PageCache.DirtyPages(bigPath) > bigDirty / 2,
            $"and left the other file to the OS: {CloudMirrorFs.Tests.Support.PageCache.DirtyPages(bigPath)} of {bigDirty} pages still dirty");

        await facet.FlushAsync(default);
        Assert.AreEqual(0, CloudMirrorFs.Tests.Support.PageCache.DirtyPages(bigPath), "the whole barrier flushes every file");
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task FlushFile_WhileAnotherCallerFlushesTheSameFile_ReturnsOnlyOnceTheBytesAreOnTheDisk()
    {
        // Two programs fsync the same file: the first takes the handle's mark and starts the fsync; the second
        // finds no mark. It must wait for the first's fsync, which covers its writes, not return at once.
        using var disk = new TempDir("barrier", CloudMirrorFs.Tests.Support.PageCache.DiskFolder);
        string dir = disk.Path;
        await using DirectoryFacet facet = await WithLargeFileAsync(dir, mebibytes: 64);
        var big = new FileRef(1, "big");
        string bigPath = Path.Combine(dir, "big");
        long flushes = facet.HandleFlushes;
        Task first = Task.Run(async () => await facet.FlushFileAsync(big, default));
        SpinWait.SpinUntil(() => facet.HandleFlushes > flushes || first.IsCompleted, TimeSpan.FromSeconds(10));
        Assert.IsFalse(first.IsCompleted, "the premise: the first fsync of 64 MiB takes longer than starting a second");

        await facet.FlushFileAsync(big, default);

        long dirty = CloudMirrorFs.Tests.Support.PageCache.DirtyPages(bigPath);
        Assert.AreEqual(0, dirty, "the second caller returned with the file's bytes on the disk");
        await first;
    }

    /// <summary>A directory facet in <paramref name="dir"/> with file id 1, "big", written and not flushed.</summary>
    private static async Task<DirectoryFacet> WithLargeFileAsync(string dir, int mebibytes)
    {
        var facet = new DirectoryFacet("disk", dir);
        await facet.OpenAsync(default);
        var big = new FileRef(1, "big");
        await facet.CreateFileAsync(big, (UnixFileMode)0b110_100_100, default);
        byte[] chunk = new byte[1 << 20];
        new Random(mebibytes).NextBytes(chunk);
        for (int i = 0; i < mebibytes; i++)
        {
            await facet.WriteAsync(big, (long)i << 20, chunk, default);
        }
        return facet;
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task FlushFile_AfterATruncateAPunchedHoleOrAModeChange_FlushesTheFile()
    {
        // A length change or a hole leaves no dirty page, but the file's inode changed: its barrier must fsync it.
        // They did not mark the handle, so an fsync after a truncate alone flushed nothing of the file.
        using var scratch = new TempDir("barrier");
        await using var facet = new DirectoryFacet("dir", scratch.Path);
        await facet.OpenAsync(default);
        var f = new FileRef(7, "f");
        await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await facet.WriteAsync(f, 0, new byte[8192], default);
        await facet.FlushFileAsync(f, default);
        long flushes = facet.HandleFlushes;
        await facet.FlushFileAsync(f, default);
        Assert.AreEqual(flushes, facet.HandleFlushes, "nothing changed: nothing to flush");

        await facet.SetLengthAsync(f, 100, default);
        await facet.FlushFileAsync(f, default);
        Assert.AreEqual(flushes + 1, facet.HandleFlushes, "a truncate is flushed by the file's barrier");

        await facet.ZeroRangeAsync(f, 0, 50, deallocate: true, default);
        await facet.FlushAsync(default);
        Assert.AreEqual(flushes + 2, facet.HandleFlushes, "so is a punched hole, by either barrier");

        // chmod and utimens go by path; the volume names the file, whose barrier then flushes it
        await facet.SetAttributesAsync("f", new AttributeChange { Mode = (UnixFileMode)0b100_100_100, FileId = f.Id }, default);
        await facet.FlushFileAsync(f, default);
        Assert.AreEqual(flushes + 3, facet.HandleFlushes, "so is a mode change");
    }
}
