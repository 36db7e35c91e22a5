using System.Text;
using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Tests.Facets;

/// <summary>What every facet must do. Each facet kind runs this suite through a subclass.</summary>
public abstract class FacetContractTests
{
    private TempDir _dir = null!;

    protected IFacet Facet { get; private set; } = null!;

    protected string Scratch => _dir.Path;

    /// <summary>A fresh, empty facet whose storage lives under <paramref name="scratchDir"/>.</summary>
    protected abstract IFacet CreateFacet(string scratchDir);

    [TestInitialize]
    public async Task SetUp()
    {
        _dir = new TempDir("facet");
        Facet = CreateFacet(_dir.Path);
        await Facet.OpenAsync(default);
    }

    [TestCleanup]
    public async Task TearDown()
    {
        await Facet.DisposeAsync();
        _dir.Dispose();
    }

    protected static byte[] Bytes(int n, int seed)
    {
        byte[] b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private async Task<byte[]> ReadAsync(FileRef f, long offset, int n)
    {
        byte[] b = new byte[n];
        int got = await Facet.ReadAsync(f, offset, b, default);
        return b[..got];
    }

    [TestMethod]
    public async Task Write_ThenRead_SameBytes()
    {
        var f = new FileRef(10, "a.bin");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_000, default);
        byte[] data = Bytes(300_000, 1);
        await Facet.WriteAsync(f, 0, data, default);
        await Facet.WriteAsync(f, 1000, Bytes(10, 2), default);
        data[1000..1010].AsSpan().Clear();
        Bytes(10, 2).CopyTo(data, 1000);
        CollectionAssert.AreEqual(data, await ReadAsync(f, 0, 400_000), "short read at the end of file");
        Assert.AreEqual(300_000, (await Facet.StatAsync("a.bin", default))!.Value.Length);
        Assert.AreEqual(0, (await ReadAsync(f, 500_000, 10)).Length, "nothing past the end");
    }

    [TestMethod]
    public async Task Write_FarOffset_SparseHoleReadsZeros()
    {
        var f = new FileRef(11, "sparse");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 100L << 20, Bytes(100, 3), default);
        Assert.AreEqual((100L << 20) + 100, (await Facet.StatAsync("sparse", default))!.Value.Length);
        Assert.IsTrue((await ReadAsync(f, 50L << 20, 4096)).All(b => b == 0));
    }

    [TestMethod]
    public async Task SetLength_ShrinkAndGrow()
    {
        var f = new FileRef(12, "t");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 0, Bytes(10_000, 4), default);
        await Facet.SetLengthAsync(f, 100, default);
        await Facet.SetLengthAsync(f, 5000, default);
        byte[] got = await ReadAsync(f, 0, 10_000);
        Assert.AreEqual(5000, got.Length);
        CollectionAssert.AreEqual(Bytes(10_000, 4)[..100], got[..100]);
        Assert.IsTrue(got[100..].All(b => b == 0), "grown bytes are zeros, not the old ones");
    }

    [TestMethod]
    public async Task ZeroRange_AmongWritesAndTruncates_ReadsAsTheReference_LengthKept()
    {
        // Random writes, zeroed ranges (inside blocks, across them, whole ones, past the end) and truncates on one
        // file, with commit points between; after each step the whole file reads as a plain array does.
        var f = new FileRef(20, "z.bin");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        var rng = new Random(20);
        byte[] reference = [];
        long commit = 0;
        for (int step = 0; step < 200; step++)
        {
            int op = rng.Next(10);
            if (op < 4)
            {
                int at = rng.Next(1_200_000);
                byte[] data = Bytes(1 + rng.Next(300_000), step);
                await Facet.WriteAsync(f, at, data, default);
                if (at + data.Length > reference.Length)
                {
                    Array.Resize(ref reference, at + data.Length);
                }
                data.CopyTo(reference, at);
            }
            else if (op < 8)
            {
                int at = rng.Next(Math.Max(1, reference.Length + 100_000));
                int length = 1 + rng.Next(rng.Next(2) == 0 ? 5_000 : 800_000);
                await Facet.ZeroRangeAsync(f, at, length, deallocate: rng.Next(2) == 0, default);
                if (at < reference.Length)
                {
                    Array.Clear(reference, at, Math.Min(length, reference.Length - at));
                }
            }
            else if (op == 8)
            {
                int length = rng.Next(1_300_000);
                await Facet.SetLengthAsync(f, length, default);
                Array.Resize(ref reference, length);
            }
            else
            {
                await Facet.CommitAsync(++commit, default);
            }
            Assert.AreEqual(reference.Length, (await Facet.StatAsync("z.bin", default))!.Value.Length, $"length after step {step}");
            byte[] got = await ReadAsync(f, 0, reference.Length + 10);
            Assert.AreEqual(reference.Length, got.Length, $"bytes read after step {step}");
            for (int i = 0; i < reference.Length; i++)
            {
                if (got[i] != reference[i])
                {
                    Assert.Fail($"after step {step} (op {op}): byte {i} is {got[i]}, expected {reference[i]}");
                }
            }
        }
    }

    [TestMethod]
    public async Task Rename_OverExistingFile_Replaces_AndOpenHandleFollows()
    {
        var a = new FileRef(20, "a");
        var b = new FileRef(21, "b");
        await Facet.CreateFileAsync(a, (UnixFileMode)0b110_100_100, default);
        await Facet.CreateFileAsync(b, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(a, 0, "first"u8.ToArray(), default);
        await Facet.WriteAsync(b, 0, "second"u8.ToArray(), default);
        await Facet.RenameAsync("a", "b", default);
        Assert.IsNull(await Facet.StatAsync("a", default));
        await Facet.WriteAsync(a with { Path = "b" }, 5, "!"u8.ToArray(), default);
        CollectionAssert.AreEqual("first!"u8.ToArray(), await ReadAsync(a with { Path = "b" }, 0, 100));
    }

    [TestMethod]
    public async Task Rename_DirectoryWithChildren_ChildrenMoveWithIt()
    {
        await Facet.CreateDirectoryAsync("d", (UnixFileMode)0b111_101_101, default);
        await Facet.CreateDirectoryAsync("d/e", (UnixFileMode)0b111_101_101, default);
        var f = new FileRef(30, "d/e/f");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 0, "x"u8.ToArray(), default);
        await Facet.RenameAsync("d", "z", default);
        CollectionAssert.AreEqual("x"u8.ToArray(), await ReadAsync(f with { Path = "z/e/f" }, 0, 10));
        Assert.AreEqual(NodeKind.Directory, (await Facet.StatAsync("z/e", default))!.Value.Kind);
        Assert.IsNull(await Facet.StatAsync("d", default));
    }

    [TestMethod]
    public async Task Replays_CreateDeleteRenameTwice_Succeed()
    {
        var f = new FileRef(40, "r");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.CreateDirectoryAsync("dd", (UnixFileMode)0b111_101_101, default);
        await Facet.CreateDirectoryAsync("dd", (UnixFileMode)0b111_101_101, default);
        await Facet.RenameAsync("r", "s", default);
        await Facet.RenameAsync("r", "s", default);
        await Facet.DeleteFileAsync(f with { Path = "s" }, default);
        await Facet.DeleteFileAsync(f with { Path = "s" }, default);
        await Facet.DeleteDirectoryAsync("dd", default);
        await Facet.DeleteDirectoryAsync("dd", default);
        Assert.AreEqual(0, (await Facet.ListAsync("", default)).Count);
    }

    [TestMethod]
    public async Task DeleteDirectory_NotEmpty_Refused()
    {
        await Facet.CreateDirectoryAsync("full", (UnixFileMode)0b111_101_101, default);
        await Facet.CreateFileAsync(new FileRef(50, "full/x"), (UnixFileMode)0b110_100_100, default);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await Facet.DeleteDirectoryAsync("full", default));
        Assert.AreEqual(MirrorError.NotEmpty, e.Error);
    }

    [TestMethod]
    public async Task List_And_Stat_ReportKindsAndNames()
    {
        await Facet.CreateDirectoryAsync("dir", (UnixFileMode)0b111_101_101, default);
        await Facet.CreateFileAsync(new FileRef(60, "file"), (UnixFileMode)0b110_100_100, default);
        var names = (await Facet.ListAsync("", default)).ToDictionary(n => n.Name, n => n.Kind);
        Assert.AreEqual(2, names.Count);
        Assert.AreEqual(NodeKind.Directory, names["dir"]);
        Assert.AreEqual(NodeKind.File, names["file"]);
        Assert.IsNull(await Facet.StatAsync("missing", default));
    }

    [TestMethod]
    public async Task SetAttributes_ModeAndTimes_RoundTrip()
    {
        var f = new FileRef(70, "m");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        var when = new DateTime(2020, 5, 6, 7, 8, 9, DateTimeKind.Utc);
        await Facet.SetAttributesAsync("m", new AttributeChange { Mode = (UnixFileMode)0b111_000_000, LastWriteUtc = when }, default);
        NodeInfo info = (await Facet.StatAsync("m", default))!.Value;
        Assert.AreEqual(when, info.LastWriteUtc);
        if (!OperatingSystem.IsWindows())
        {
            Assert.AreEqual((UnixFileMode)0b111_000_000, info.Mode);
        }
    }

    [TestMethod]
    [DataRow("../x")]
    [DataRow("a//b")]
    [DataRow("/abs")]
    [DataRow("a/./b")]
    [DataRow("trailing/")]
    public async Task Paths_Invalid_Refused(string path)
    {
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await Facet.CreateFileAsync(new FileRef(80, path), (UnixFileMode)0b110_100_100, default));
        Assert.AreEqual(MirrorError.InvalidPath, e.Error);
    }

    [TestMethod]
    public async Task Write_EightThreadsDisjointRanges_AllBytesLand()
    {
        var f = new FileRef(90, "par");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Task.WhenAll(Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            for (int i = 0; i < 32; i++)
            {
                await Facet.WriteAsync(f, (i * 8 + t) * 4096L, Bytes(4096, i * 8 + t), default);
            }
        })));
        await Facet.FlushAsync(default);
        byte[] all = await ReadAsync(f, 0, 256 * 4096);
        for (int k = 0; k < 256; k++)
        {
            CollectionAssert.AreEqual(Bytes(4096, k), all[(k * 4096)..((k + 1) * 4096)], $"chunk {k}");
        }
    }

    private const UnixFileMode DirMode = (UnixFileMode)0b111_101_101;
    private const UnixFileMode FileMode = (UnixFileMode)0b110_100_100;

    private async Task<MirrorError> ErrorOf(Func<Task> action)
        => (await Assert.ThrowsExactlyAsync<MirrorException>(action)).Error;

    [TestMethod]
    public async Task Symlink_Create_ReadLinkStatAndListReportTheLinkItself()
    {
        await Facet.CreateDirectoryAsync("d", DirMode, default);
        const string target = "../some/wh\u00e9re"; // relative, dangling, not ASCII: stored verbatim
        await Facet.CreateSymlinkAsync(new FileRef(100, "d/l"), target, default);
        Assert.AreEqual(target, await Facet.ReadLinkAsync("d/l", default));
        NodeInfo info = (await Facet.StatAsync("d/l", default))!.Value;
        Assert.AreEqual(NodeKind.Symlink, info.Kind);
        Assert.AreEqual(Encoding.UTF8.GetByteCount(target), info.Length, "a link's length is its target's UTF-8 byte length");
        NodeInfo listed = (await Facet.ListAsync("d", default)).Single();
        Assert.AreEqual(("l", NodeKind.Symlink, (long)Encoding.UTF8.GetByteCount(target)), (listed.Name, listed.Kind, listed.Length));
    }

    [TestMethod]
    public async Task Symlink_ToADirectory_IsALinkNotADirectory()
    {
        await Facet.CreateDirectoryAsync("real", DirMode, default);
        await Facet.CreateFileAsync(new FileRef(101, "real/x"), FileMode, default);
        await Facet.CreateSymlinkAsync(new FileRef(102, "l"), "real", default);
        Assert.AreEqual(NodeKind.Symlink, (await Facet.ListAsync("", default)).Single(n => n.Name == "l").Kind);
        Assert.AreEqual(NodeKind.Symlink, (await Facet.StatAsync("l", default))!.Value.Kind);
        Assert.AreEqual(MirrorError.NotDirectory, await ErrorOf(async () => await Facet.ListAsync("l", default)), "a link is never listed through");
        Assert.IsNull(await Facet.StatAsync("l/x", default), "a path under a link names nothing");
        Assert.AreEqual(MirrorError.NotDirectory, await ErrorOf(async () => await Facet.DeleteDirectoryAsync("l", default)));
        await Facet.DeleteFileAsync(new FileRef(102, "l"), default);
        Assert.IsNull(await Facet.StatAsync("l", default));
        Assert.AreEqual(NodeKind.File, (await Facet.StatAsync("real/x", default))!.Value.Kind, "deleting the link left its target alone");
    }

    [TestMethod]
    public async Task Symlink_Replays_CreateAndDeleteTwiceSucceed_ANewTargetReplacesTheOld()
    {
        var l = new FileRef(103, "l");
        await Facet.CreateSymlinkAsync(l, "one", default);
        await Facet.CreateSymlinkAsync(l, "one", default);
        await Facet.CreateSymlinkAsync(l, "two", default);
        Assert.AreEqual("two", await Facet.ReadLinkAsync("l", default));
        await Facet.DeleteFileAsync(l, default);
        await Facet.DeleteFileAsync(l, default);
        Assert.AreEqual(0, (await Facet.ListAsync("", default)).Count);
    }

    [TestMethod]
    public async Task Symlink_AndFileOrDirectory_NeverReplaceEachOther_Exists()
    {
        await Facet.CreateFileAsync(new FileRef(104, "f"), FileMode, default);
        await Facet.CreateDirectoryAsync("d", DirMode, default);
        await Facet.CreateSymlinkAsync(new FileRef(105, "l"), "f", default);
        Assert.AreEqual(MirrorError.Exists, await ErrorOf(async () => await Facet.CreateSymlinkAsync(new FileRef(104, "f"), "x", default)));
        Assert.AreEqual(MirrorError.Exists, await ErrorOf(async () => await Facet.CreateSymlinkAsync(new FileRef(106, "d"), "x", default)));
        Assert.AreEqual(MirrorError.Exists, await ErrorOf(async () => await Facet.CreateFileAsync(new FileRef(105, "l"), FileMode, default)));
        Assert.AreEqual(MirrorError.Exists, await ErrorOf(async () => await Facet.CreateDirectoryAsync("l", DirMode, default)));
        Assert.AreEqual("f", await Facet.ReadLinkAsync("l", default));
        Assert.AreEqual(NodeKind.File, (await Facet.StatAsync("f", default))!.Value.Kind);
        Assert.AreEqual(NodeKind.Directory, (await Facet.StatAsync("d", default))!.Value.Kind);
    }

    [TestMethod]
    public async Task Symlink_RenameMovesTheLink_DeleteRemovesOnlyTheLink()
    {
        var f = new FileRef(107, "f");
        await Facet.CreateFileAsync(f, FileMode, default);
        await Facet.WriteAsync(f, 0, "data"u8.ToArray(), default);
        await Facet.CreateFileAsync(new FileRef(108, "g"), FileMode, default);
        await Facet.CreateDirectoryAsync("d", DirMode, default);
        await Facet.CreateSymlinkAsync(new FileRef(109, "l"), "f", default);
        await Facet.RenameAsync("l", "d/m", default);
        Assert.IsNull(await Facet.StatAsync("l", default));
        Assert.AreEqual("f", await Facet.ReadLinkAsync("d/m", default));
        await Facet.RenameAsync("d/m", "g", default); // over a file: the file goes, as rename(2) does
        Assert.AreEqual("f", await Facet.ReadLinkAsync("g", default));
        await Facet.DeleteFileAsync(new FileRef(109, "g"), default);
        Assert.IsNull(await Facet.StatAsync("g", default));
        CollectionAssert.AreEqual("data"u8.ToArray(), await ReadAsync(f, 0, 100), "the link's target is untouched");
    }

    [TestMethod]
    public async Task Symlink_ReadWriteSetLength_RefusedAsInvalidArgument_TargetUntouched()
    {
        var f = new FileRef(110, "f");
        await Facet.CreateFileAsync(f, FileMode, default);
        await Facet.WriteAsync(f, 0, "data"u8.ToArray(), default);
        var l = new FileRef(111, "l");
        await Facet.CreateSymlinkAsync(l, "f", default);
        Assert.AreEqual(MirrorError.InvalidArgument, await ErrorOf(async () => await Facet.WriteAsync(l, 0, "evil"u8.ToArray(), default)));
        Assert.AreEqual(MirrorError.InvalidArgument, await ErrorOf(async () => await Facet.ReadAsync(l, 0, new byte[10], default)));
        Assert.AreEqual(MirrorError.InvalidArgument, await ErrorOf(async () => await Facet.SetLengthAsync(l, 0, default)));
        CollectionAssert.AreEqual("data"u8.ToArray(), await ReadAsync(f, 0, 100));
    }

    [TestMethod]
    public async Task ReadLink_OfAFileOrDirectory_InvalidArgument_OfNothing_NotFound_Symlink()
    {
        await Facet.CreateFileAsync(new FileRef(112, "f"), FileMode, default);
        await Facet.CreateDirectoryAsync("d", DirMode, default);
        Assert.AreEqual(MirrorError.InvalidArgument, await ErrorOf(async () => await Facet.ReadLinkAsync("f", default)));
        Assert.AreEqual(MirrorError.InvalidArgument, await ErrorOf(async () => await Facet.ReadLinkAsync("d", default)));
        Assert.AreEqual(MirrorError.NotFound, await ErrorOf(async () => await Facet.ReadLinkAsync("missing", default)));
    }

    [TestMethod]
    [DataRow("empty")]
    [DataRow("NUL")]
    [DataRow("lone surrogate")]
    [DataRow("4096 bytes")]
    public async Task Symlink_BadTarget_RefusedAsInvalidArgument(string which)
    {
        string target = which switch
        {
            "empty" => "",
            "NUL" => "a\0b",
            "lone surrogate" => "a" + (char)0xD800 + "b", // built here: a test case's arguments do not carry it intact
            _ => new string('x', 4096),
        };
        Assert.AreEqual(MirrorError.InvalidArgument, await ErrorOf(async () => await Facet.CreateSymlinkAsync(new FileRef(113, "l"), target, default)));
        Assert.IsNull(await Facet.StatAsync("l", default));
    }

    [TestMethod]
    public async Task Symlink_LongestTarget_4095Bytes_RoundTrips()
    {
        string target = "/" + string.Join("/", Enumerable.Repeat(new string('y', 200), 20)) + new string('z', 4095 - 1 - 20 * 200 - 19);
        Assert.AreEqual(4095, Encoding.UTF8.GetByteCount(target));
        await Facet.CreateSymlinkAsync(new FileRef(114, "long"), target, default);
        Assert.AreEqual(target, await Facet.ReadLinkAsync("long", default));
        Assert.AreEqual(4095, (await Facet.StatAsync("long", default))!.Value.Length);
    }

    [TestMethod]
    public async Task Symlink_SetAttributes_TimesGoToTheLink_TargetKeepsItsModeAndTime()
    {
        var f = new FileRef(115, "f");
        await Facet.CreateFileAsync(f, FileMode, default);
        var then = new DateTime(2019, 1, 2, 3, 4, 5, DateTimeKind.Utc);
        await Facet.SetAttributesAsync("f", new AttributeChange { Mode = (UnixFileMode)0b110_100_000, LastWriteUtc = then }, default);
        await Facet.CreateSymlinkAsync(new FileRef(116, "l"), "f", default);
        var when = new DateTime(2021, 6, 7, 8, 9, 10, DateTimeKind.Utc);
        await Facet.SetAttributesAsync("l", new AttributeChange { Mode = (UnixFileMode)0b111_111_111, LastWriteUtc = when }, default);
        NodeInfo link = (await Facet.StatAsync("l", default))!.Value;
        NodeInfo file = (await Facet.StatAsync("f", default))!.Value;
        Assert.AreEqual(NodeKind.Symlink, link.Kind);
        Assert.AreEqual(when, link.LastWriteUtc);
        Assert.AreEqual(then, file.LastWriteUtc, "the target's time is not the link's");
        if (!OperatingSystem.IsWindows())
        {
            Assert.AreEqual((UnixFileMode)0b110_100_000, file.Mode, "a chmod of the link never reaches its target");
        }
    }
}
