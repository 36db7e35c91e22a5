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
}
