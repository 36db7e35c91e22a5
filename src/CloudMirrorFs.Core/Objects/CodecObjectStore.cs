using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace CloudMirrorFs.Objects;

/// <summary>
/// Compression and encryption of every object but the volume descriptor, as a decorator over any store.
/// An object is a 4-byte header ("CM", version, flags: 1 compressed, 2 encrypted); from version 2 an XxHash3 of the
/// rest (8 bytes, little-endian), checked at every read, so bytes that changed after cmfs wrote them (bit rot on a
/// folder store's disk, an edit) are refused as damage, never served or restored; then the payload; encrypted,
/// the payload is a 12-byte random nonce, the AES-256-GCM ciphertext and its 16-byte tag, with the object's key as
/// associated data (an object moved to another key fails to decrypt). Compression is Brotli at quality 2: built into
/// .NET (no native library to ship on Windows or Linux), and near zstd's fast levels in ratio and speed for the
/// mixed data a drive holds; a payload that does not shrink is stored as is. A ranged get fetches the whole object
/// (a block, at most <c>blockSize</c>) and slices after decoding.
/// </summary>
public sealed class CodecObjectStore : IObjectStore, IDecorator<IObjectStore>
{
    private const byte FlagCompressed = 1, FlagEncrypted = 2;

    private const byte Version = 2;
    private const int HeaderSize = 12; // "CM", version, flags, checksum of the rest
    private readonly IObjectStore _inner;
    private readonly byte[]? _key;
    private readonly bool _compress;

    /// <summary>
    /// True (the default): objects are written with a checksum (header version 2). False for a remote whose format
    /// is older than <see cref="VolumeDescriptor.ChecksumFormat"/>, so that the cmfs that created it can still read
    /// it. Reads take either version.
    /// </summary>
    public bool Checksums { get; set; } = true;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="key"/> (32 bytes) turns encryption on.</summary>
    public CodecObjectStore(IObjectStore inner, byte[]? key, bool compress)
    {
        if (key is not null && key.Length != 32)
        {
            throw new MirrorException(MirrorError.InvalidArgument, "an encryption key must be 32 bytes (AES-256)");
        }
        _inner = inner;
        _key = key;
        _compress = compress;
    }

    /// <summary>The descriptor's encryption parameter: the algorithm and a fingerprint of the key (not the key), or null.</summary>
    public string? EncryptionParameter => _key is null ? null : $"aes-256-gcm:{KeyId(_key)}";

    /// <inheritdoc />
    public string Description => _inner.Description;

    IObjectStore IDecorator<IObjectStore>.Inner => _inner;

    /// <summary>A fingerprint that identifies a key without revealing it.</summary>
    public static string KeyId(byte[] key)
        => Convert.ToHexStringLower(SHA256.HashData([.. "cmfs-key-id:"u8, .. key]))[..16];

    /// <inheritdoc />
    public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken cancellationToken) => _inner.EnsureReadyAsync(createIfMissing, cancellationToken);

    /// <inheritdoc />
    public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        => key == RemoteImage.DescriptorKey ? _inner.PutAsync(key, data, cancellationToken)
            : _key is null && !_compress ? _inner.PutAsync(key, Header(0, data.Span, Checksums), data, cancellationToken) // the body as it is: no copy
            : _inner.PutAsync(key, Encode(key, data.Span), cancellationToken);

    /// <inheritdoc />
    public ValueTask PutUnsyncedAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        => key == RemoteImage.DescriptorKey ? _inner.PutAsync(key, data, cancellationToken)
            : _key is null && !_compress ? _inner.PutUnsyncedAsync(key, Header(0, data.Span, Checksums), data, cancellationToken)
            : _inner.PutUnsyncedAsync(key, Encode(key, data.Span), cancellationToken);

    /// <inheritdoc />
    public ValueTask SyncAsync(CancellationToken cancellationToken) => _inner.SyncAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken cancellationToken)
    {
        if (key == RemoteImage.DescriptorKey)
        {
            return await _inner.GetAsync(key, offset, length, cancellationToken).ConfigureAwait(false);
        }
        byte[]? stored = await _inner.GetAsync(key, 0, null, cancellationToken).ConfigureAwait(false);
        if (stored is null)
        {
            return null;
        }
        ArraySegment<byte> plain = Decode(key, stored);
        long start = Math.Min(offset, plain.Count);
        long count = Math.Min(length ?? plain.Count - start, plain.Count - start);
        if (start == 0 && count == plain.Count && plain.Offset == 0 && plain.Array!.Length == plain.Count)
        {
            return plain.Array;
        }
        byte[] part = GC.AllocateUninitializedArray<byte>((int)count); // copied over whole
        plain.AsSpan((int)start, (int)count).CopyTo(part);
        return part;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (ObjectInfo o in _inner.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            yield return o;
        }
    }

    /// <inheritdoc />
    public ValueTask DeleteAsync(string key, CancellationToken cancellationToken) => _inner.DeleteAsync(key, cancellationToken);

    /// <inheritdoc />
    public ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken) => _inner.DeleteManyAsync(keys, cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _inner.DisposeAsync();

    private byte[] Encode(string key, ReadOnlySpan<byte> data)
    {
        byte flags = 0;
        ReadOnlySpan<byte> payload = data;
        if (_compress && data.Length > 64)
        {
            byte[] squeezed = GC.AllocateUninitializedArray<byte>(BrotliEncoder.GetMaxCompressedLength(data.Length));
            if (BrotliEncoder.TryCompress(data, squeezed, out int n, quality: 2, window: 22) && n < data.Length)
            {
                payload = squeezed.AsSpan(0, n);
                flags |= FlagCompressed;
            }
        }
        // One allocation for the stored object, written in place and whole (so not cleared first): header, then the
        // payload (sealed when encrypting: nonce, ciphertext, tag).
        byte[] result;
        int headerSize = Checksums ? HeaderSize : 4;
        if (_key is not null)
        {
            flags |= FlagEncrypted;
            result = GC.AllocateUninitializedArray<byte>(headerSize + 12 + payload.Length + 16);
            Span<byte> nonce = result.AsSpan(headerSize, 12);
            RandomNumberGenerator.Fill(nonce);
            using var aes = new AesGcm(_key, 16);
            aes.Encrypt(nonce, payload, result.AsSpan(headerSize + 12, payload.Length), result.AsSpan(headerSize + 12 + payload.Length), Encoding.UTF8.GetBytes(key));
        }
        else
        {
            result = GC.AllocateUninitializedArray<byte>(headerSize + payload.Length);
            payload.CopyTo(result.AsSpan(headerSize));
        }
        WriteHeader(result, flags, result.AsSpan(headerSize), Checksums);
        return result;
    }

    private static byte[] Header(byte flags, ReadOnlySpan<byte> rest, bool checksum)
    {
        byte[] header = new byte[checksum ? HeaderSize : 4];
        WriteHeader(header, flags, rest, checksum);
        return header;
    }

    /// <summary>Version 2 with the checksum of <paramref name="rest"/>, or version 1 (4 bytes) without.</summary>
    private static void WriteHeader(Span<byte> into, byte flags, ReadOnlySpan<byte> rest, bool checksum)
    {
        into[0] = (byte)'C';
        into[1] = (byte)'M';
        into[2] = checksum ? Version : (byte)1;
        into[3] = flags;
        if (checksum)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(into[4..HeaderSize], XxHash3.HashToUInt64(rest));
        }
    }

    /// <summary>The plain bytes of a stored object, without copying them when nothing needs undoing but the header.</summary>
    private ArraySegment<byte> Decode(string key, byte[] stored)
    {
        if (stored.Length < 4 || stored[0] != 'C' || stored[1] != 'M' || stored[2] is not (1 or Version) || (stored[2] == Version && stored.Length < HeaderSize))
        {
            throw Damaged(key, "has no CloudMirrorFs header; it was not written by this volume or is damaged");
        }
        byte flags = stored[3];
        int headerSize = stored[2] == 1 ? 4 : HeaderSize; // version 1 (older builds) carries no checksum
        ArraySegment<byte> payload = new(stored, headerSize, stored.Length - headerSize);
        if (headerSize == HeaderSize && BinaryPrimitives.ReadUInt64LittleEndian(stored.AsSpan(4, 8)) != XxHash3.HashToUInt64(payload))
        {
            throw Damaged(key, "fails its checksum: its bytes changed after cmfs stored them (a failing disk, or an edit); 'cmfs verify --repair' sends it again from a Synchronised local facet");
        }
        if ((flags & FlagEncrypted) != 0)
        {
            if (_key is null)
            {
                throw new MirrorException(MirrorError.AccessDenied, $"{Description}: object {key} is encrypted; configure the facet's encryption key (encryption.keyFile or encryption.keyEnv)");
            }
            if (payload.Count < 28)
            {
                throw Damaged(key, "is truncated");
            }
            byte[] plain = GC.AllocateUninitializedArray<byte>(payload.Count - 28); // decrypted into whole
            try
            {
                using var aes = new AesGcm(_key, 16);
                aes.Decrypt(payload.AsSpan(0, 12), payload.AsSpan(12, plain.Length), payload.AsSpan(12 + plain.Length), plain, Encoding.UTF8.GetBytes(key));
            }
            catch (AuthenticationTagMismatchException)
            {
                throw new MirrorException(MirrorError.AccessDenied,
                    $"{Description}: object {key} does not decrypt with the configured key: the key is wrong, or the object was altered or moved");
            }
            payload = plain;
        }
        else if (_key is not null)
        {
            throw new MirrorException(MirrorError.AccessDenied, $"{Description}: object {key} is not encrypted but encryption is configured; the remote was written without it");
        }
        if ((flags & FlagCompressed) != 0)
        {
            try
            {
                using var input = new MemoryStream(payload.Array!, payload.Offset, payload.Count, writable: false);
                using var brotli = new BrotliStream(input, CompressionMode.Decompress);
                using var output = new MemoryStream();
                brotli.CopyTo(output);
                payload = output.ToArray();
            }
            catch (InvalidDataException)
            {
                throw Damaged(key, "does not decompress");
            }
        }
        return payload;
    }

    /// <summary>
    /// An object whose bytes are not what this codec wrote. The inner <see cref="InvalidDataException"/> marks it as
    /// damage, so that readers can tell it from a failing service (which stays an error to retry).
    /// </summary>
    private MirrorException Damaged(string key, string what)
        => new(MirrorError.IoError, $"{Description}: object {key} {what}", new InvalidDataException(what));

    /// <summary>True when <paramref name="e"/> reports an object whose stored bytes are damaged, not a failing store.</summary>
    public static bool IsDamage(Exception e) => e is MirrorException { InnerException: InvalidDataException };
}
