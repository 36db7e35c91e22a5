using System.Text;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Options;

namespace CloudMirrorFs.Tests.Objects;

[TestClass]
public sealed class EncryptionTests
{
    private const int Block = 64 * 1024;

    private static FacetOptions Options(string bucket, string? keyFile, string compression = "none")
    {
        var settings = new Dictionary<string, string> { ["compression"] = compression };
        if (keyFile is not null)
        {
            settings["encryption"] = $$"""{ "keyFile": "{{keyFile}}" }""";
        }
        return new FacetOptions { Name = "vault", Role = FacetRole.Remote, Kind = "folder", Path = bucket, Settings = settings };
    }

    private static VolumeOptions Volume => new() { StateDir = "/unused", BlockSize = Block, Facets = [] };

    private static string KeyFile(string dir, string name, byte seed)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, Enumerable.Range(0, 32).Select(i => (byte)(i * 7 + seed)).ToArray());
        return path;
    }

    private static async Task WriteSecretAsync(IFacet facet, string text)
    {
        await facet.OpenAsync(default);
        await facet.CreateDirectoryAsync("secret-folder-name", (UnixFileMode)0b111_101_101, default);
        var f = new FileRef(5, "secret-folder-name/secret-file-name.txt");
        await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await facet.WriteAsync(f, 0, Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat(text, 5000))), default);
        await facet.CommitAsync(1, default);
    }

    [TestMethod]
    public async Task Encrypted_BucketHoldsNoPlaintext_NoNames_AndRestoresWithTheKey()
    {
        using var dir = new TempDir("enc");
        string bucket = Path.Combine(dir.Path, "bucket");
        string key = KeyFile(dir.Path, "key", 1);
        await using (IFacet facet = FacetFactory.Create(Options(bucket, key, "brotli"), Volume))
        {
            await WriteSecretAsync(facet, "TOPSECRET-PLAINTEXT ");
        }
        foreach (string file in Directory.GetFiles(bucket, "*", SearchOption.AllDirectories))
        {
            string content = Encoding.Latin1.GetString(File.ReadAllBytes(file));
            Assert.IsFalse(content.Contains("TOPSECRET", StringComparison.Ordinal), $"{file} holds plaintext data");
            Assert.IsFalse(content.Contains("secret-file-name", StringComparison.Ordinal) || file.Contains("secret", StringComparison.Ordinal), $"{file} reveals a file name");
        }
        string target = Path.Combine(dir.Path, "restored");
        await RemoteRestore.RestoreAsync(FacetFactory.CreateStore(Options(bucket, key)), target, null, null, default);
        StringAssert.StartsWith(File.ReadAllText(Path.Combine(target, "secret-folder-name", "secret-file-name.txt")), "TOPSECRET-PLAINTEXT TOPSECRET");
    }

    [TestMethod]
    public async Task WrongKey_IsRefusedClearly_NeverGarbage()
    {
        using var dir = new TempDir("enc");
        string bucket = Path.Combine(dir.Path, "bucket");
        await using (IFacet facet = FacetFactory.Create(Options(bucket, KeyFile(dir.Path, "right", 1)), Volume))
        {
            await WriteSecretAsync(facet, "DATA ");
        }
        string wrong = KeyFile(dir.Path, "wrong", 2);
        await using IFacet other = FacetFactory.Create(Options(bucket, wrong), Volume);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await other.OpenAsync(default));
        Assert.AreEqual(MirrorError.AccessDenied, e.Error);
        StringAssert.Contains(e.Message, "not the one this remote was written with");
        var r = await Assert.ThrowsExactlyAsync<MirrorException>(() => RemoteRestore.RestoreAsync(FacetFactory.CreateStore(Options(bucket, wrong)), Path.Combine(dir.Path, "out"), null, null, default));
        Assert.AreEqual(MirrorError.AccessDenied, r.Error);
        await using IFacet none = FacetFactory.Create(Options(bucket, null), Volume);
        var n = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await none.OpenAsync(default));
        StringAssert.Contains(n.Message, "is encrypted");
    }

    [TestMethod]
    public async Task AlteredObject_IsRefusedAsDamage_NotBlamedOnTheKey()
    {
        using var dir = new TempDir("enc");
        string bucket = Path.Combine(dir.Path, "bucket");
        string key = KeyFile(dir.Path, "key", 3);
        await using (IFacet facet = FacetFactory.Create(Options(bucket, key), Volume))
        {
            await WriteSecretAsync(facet, "DATA ");
        }
        string blockObject = Directory.GetFiles(Path.Combine(bucket, "data"), "*", SearchOption.AllDirectories).First();
        byte[] bytes = File.ReadAllBytes(blockObject);
        bytes[^20] ^= 1;
        File.WriteAllBytes(blockObject, bytes);
        var store = FacetFactory.CreateStore(Options(bucket, key));
        string objectKey = Path.GetRelativePath(bucket, blockObject).Replace('\\', '/');
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.GetAsync(objectKey, 0, null, default));
        Assert.IsTrue(CodecObjectStore.IsDamage(e), e.Message);
        StringAssert.Contains(e.Message, "fails its checksum");

        // Altered with its checksum made to match: the authenticated encryption still refuses it.
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(4, 8), System.IO.Hashing.XxHash3.HashToUInt64(bytes.AsSpan(12)));
        File.WriteAllBytes(blockObject, bytes);
        var forged = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.GetAsync(objectKey, 0, null, default));
        Assert.AreEqual(MirrorError.AccessDenied, forged.Error);
    }

    [TestMethod]
    public async Task Compression_StoresFewerBytes_RoundTrips()
    {
        using var dir = new TempDir("cmp");
        string plain = Path.Combine(dir.Path, "plain"), squeezed = Path.Combine(dir.Path, "squeezed");
        await using (IFacet a = FacetFactory.Create(Options(plain, null), Volume))
        {
            await WriteSecretAsync(a, "compressible text ");
        }
        await using (IFacet b = FacetFactory.Create(Options(squeezed, null, "brotli"), Volume))
        {
            await WriteSecretAsync(b, "compressible text ");
        }
        long Size(string d) => Directory.GetFiles(Path.Combine(d, "data"), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.IsTrue(Size(squeezed) * 10 < Size(plain), $"{Size(squeezed)} vs {Size(plain)}");
        string target = Path.Combine(dir.Path, "out");
        await RemoteRestore.RestoreAsync(FacetFactory.CreateStore(Options(squeezed, null, "brotli")), target, null, null, default);
        Assert.AreEqual(string.Concat(Enumerable.Repeat("compressible text ", 5000)), File.ReadAllText(Path.Combine(target, "secret-folder-name", "secret-file-name.txt")));
    }
}
