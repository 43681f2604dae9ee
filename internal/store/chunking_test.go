package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/iotest"
)

// The chunker's boundaries are part of the store's format: a node keeps the chunks of what it
// has, and new boundaries for the same bytes would make it fetch them all again. These fixed
// vectors pin the algorithm and DefaultParams: given bytes, the exact offsets and IDs of their
// chunks. A failure here means the format changed. Do not update the vectors to make it
// pass; change the chunker back, or make the change a new, versioned store format.

// The pinned parameters and algorithm.
var (
	pinnedParams    = Params{Min: 8 << 10, Avg: 32 << 10, Max: 128 << 10}
	pinnedAlgorithm = "fastcdc-v1.0.0"
)

// randomInput is 4 MiB from ChaCha8 with a fixed seed (math/rand/v2 specifies its output).
func randomInput() []byte {
	b := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte([]byte("satchel chunking test vector v1!"))).Read(b)
	return b
}

// textInput is 2 MiB of repetitive text: numbered lines of the same two pangrams.
func textInput() []byte {
	var b []byte
	for i := 0; len(b) < 2<<20; i++ {
		b = fmt.Appendf(b, "%07d the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n", i)
	}
	return b[:2<<20]
}

// chunkVector is one chunk of an input: its offset and its ID (the SHA-256 of its bytes).
type chunkVector struct {
	off int
	id  string
}

type vectorInput struct {
	name   string
	data   []byte
	sha256 string // of the whole input: if this fails, the input changed, not the chunker
	chunks []chunkVector
}

func vectorInputs() []vectorInput {
	return []vectorInput{
		{"random", randomInput(), "f96a97a9e3fbacc07c09fdaeb19650f12226ac3bc9294c67a2859c38f24dd71c", []chunkVector{
			{0, "ea045a872ca8b154a670baa6dcd2b7b1f5efa40861d0691df3973d2b1f3abfa2"},
			{37732, "3f7c9930c4c7eb7e3fa0730a1777cf4e8b3b81a2a7f5df3ca7fd6e0e632d7543"},
			{89288, "ae2876b78cb9a102922ce34e55e562f021ebdc17f320b2aba1f277e23ebcadcc"},
			{115740, "7e60f72c20ae537c279629ea7d6188bc60529c880a9e5a1d422c5b26f876450b"},
			{166363, "68d097e6a2b8ec0c583b0b66ef979a98e8f27dcdd01496ba54abb7b9c86193cf"},
			{219103, "ddcf5543f3007a8b8700828d7887f64b7046277ad26de3dd27b06e41a737a295"},
			{257247, "caabea71a74d7840e9bceda89178c9c7ed738689d60bbd633a357ac474cfc28a"},
			{299070, "25ea1e36c4f03b9ff2e654d7c05715231c6c459f8e369b411607707c053b9a65"},
			{346016, "22b047ca179eeb046da4723c42adf102b4f57a0d21f48327a375f605ce290b43"},
			{394044, "a2a61896d405f7e454587cde29e68200c4a6bac354f97068ecc022f5d8ca5c9a"},
			{428251, "d74f7ef4a85d47d5e3ce00c0a45c4f09a43ad83a6633cb79248d3e8b65da8cf7"},
			{466610, "973a02246ede42068943cb262a0fc20bb6b11df7a9ec4de442641c97a48e8797"},
			{500795, "d0fb693fd54669c5bba90a002b4415b81a60eb6fc6cd23830577163095f1150c"},
			{540961, "357586acac9658c783e524771002f9c3acd4ad031a51cafaab8523662e037f71"},
			{578402, "9d286f9607a029f5a24007fefe0cf5512ceab5e00942da25f8ead892d54dc6e9"},
			{620079, "ecafacf2a12ff1dd84a9a1bf1ddf444788eb5d3a30202792a1dff9a0211ac918"},
			{663519, "d8623b33490e4f8a6c00737715262f2f5cae966bafc8336b74955d5818e6a0e0"},
			{676984, "232b0f7ecb7eb6454ece9ba80701a510fdbfebb45ba3a6740b74781a1470dc9a"},
			{727383, "c307b4db9e970083d253bb114ef6662b9da0b0cd7d4e8e0c65d68fe0bfb70391"},
			{768348, "4b339369414b287034651bf75f9e02967893e3e70dc428c5ef97b867357d63cb"},
			{811994, "86e9a0c808d4f091cdf5585181f77dc6a922e22c3506cbc8e776337a15a53009"},
			{842838, "8c3d37d41a02c174de532c4757e46f0a5ac05bc308260998d9ad3c26c64967ae"},
			{896660, "c500486193677417011bcf9a8099f5ddf619157a3b95ba3fdeee127a88b8f2e4"},
			{920569, "62e9447a7f80ed62d14025f7ed2883b4376cfd86df1805261943bfc0aa4d7fba"},
			{959523, "fe2c4a1c3a569ae66d19c6ab5351b3de0619447c9548e1d3b5d26690c716f081"},
			{993413, "ea5cfc0d37051e14687f9d04e9ea3af88b4555844e60a16a7392c58b1e596e71"},
			{1032448, "80bf1c6444585679a99f3741d6aa3d64293354e43d552a98b97f0133b962d80b"},
			{1066082, "f1f09f068a5bca77e4b12ec8ed61bfc65a213342df4aeb04c8cdea0cb3bbc336"},
			{1101809, "6ec7348c731dadafadd306c17158ac3f7027c9dc09db8f3190bda483445b61fc"},
			{1138653, "aab7ce0e9ebb89f55a5f54f1afe138992c66586408f87e04d553c99d213139b5"},
			{1177851, "cc80da716b8cf9feabe6e0101569a0ec010b7f1cef765517a85dd77e8445ac42"},
			{1213694, "251b95f5341755ab9f33b832ede55d247f3676fba8c9d9a3cd5add2a378d9f42"},
			{1271050, "52fec2a27846bc4c6481e282e8448359ab31cb4b225e7b73f8b75c11ee7f1a70"},
			{1339819, "764bd53f3a1fcbc706c80a95eb240f7663bfbdb380ecfa91bfa8a79d828d2eb5"},
			{1376668, "6e1b7937eda924f62804f9a78f2a80bcb3ff95dd86d454ddc89fe9e9a1262729"},
			{1434808, "fc5e9f0f7313f95ae92c7ba674548c099a16aa8eae586a8f4abc4638bb3d44fb"},
			{1468155, "4f1f792aef75a53c27178e91c3797d10afa14f36052b65f288cdca02494186cc"},
			{1503616, "dbc0349abbb5927bde3627d7eef393dfc58d9cb4559d53c8c86a0a4a9b56d62d"},
			{1541538, "e0857c11cad52b88193c371a611c131e8edb96eb82e6f1d612d353874a8aa71e"},
			{1578892, "6cefd6b8408cc646c31512052259e828d2e2fe78acb7117eaf2511c791a8e044"},
			{1621282, "e2207e964b071becb0f18d6c8329147d9cef6ec427de855bbe7cd4b2197259a8"},
			{1654449, "661744b2ab6473d94b6525554238e30ca19e356a12e90ca3c89e84f34ed7f03a"},
			{1696720, "cc9f8129231b89f75a21896ddbdd87f0db362e14289aad3c163aa5993c8e0b32"},
			{1729837, "23773300a2204d3353ac02fd2650d2d794613237227da7010bf34dbb31ed2dd2"},
			{1755039, "18fd8b3d3872a5b2b79ec63b2a80d1192fe2981bffdba2880ad2c530322fb541"},
			{1789553, "3fd37f3dcfb68918a22c9f7d65fa9ab5029e015e9e0d7eb28388827b07c58120"},
			{1846112, "205f6dd396a1bf416068f6fa98eb07df08c16e31e4cff76377b9db9adc8415e1"},
			{1877188, "6d950cb23f2d4fca5b5418d980fc74e2e7f5cd164f22b6037152211727225a4c"},
			{1926703, "3b02fdb21cc479312d605f5938b52225c470f9c1f96cde74252415705ac8f7d5"},
			{1969975, "bd444c3127dd8f2d4e19de92e08ef1625ad02ac55d91941e12e2bd144f656002"},
			{2007594, "6caec8659bb79f4aa3121a5542beda77a6ac24295cf77778fbf0966ac9edc250"},
			{2042357, "1f20a5fb8c9a94b35c8a01e891af5fe1f62f3557e46f1021cb20354a05b41c0e"},
			{2076170, "d97e3040ac7cb461ec43bd077f2bc8f2ead9e356d860bdab4682abd21268b5e6"},
			{2119919, "a14b4d53025c6c36ceffacc1ded477f00f1b86c17c1bef6c4dfe8ad8a355edb6"},
			{2162224, "3d9e8e66cca23bd0b6c481135acebc4a2bbd573d4e179750170b68afed531bac"},
			{2214724, "07a5869442389117f55b2c6c1b2d68cd26b98dd3d1cca0d8089f6844527d7ce6"},
			{2265361, "6e331b43dcd035135a7e553e0fb04146cee5e5718d499199ee3ee45fecb4c781"},
			{2359909, "70218d73aa102f38edf8d8467bb7633d068de5a469773d28b0f8b67c0324bf1c"},
			{2396127, "7d46c7d3d819fe2fe35befdc1b42ffec59b0ceb0171ae7b4b2d42235784c1949"},
			{2435516, "e2f2b0c1fdefa18051bc7cb6866aafc3eb41bdfe70c719d63660e8b891218809"},
			{2476744, "c5c7565652367bf7870ee720ad20ae64fe811d537aec90b2916308ce86539193"},
			{2510913, "8bb098be65128b67d6d28f8a1305fa966f7db9c425905e011010b98034448078"},
			{2553518, "95c84fd1340c5fa6d131db7abb439dac1dde84e0ab3fdcc7599b2e270874d55a"},
			{2602140, "c21c567a7ed11199d7c49a20d62729f5fba0720c0a5146e14f3649f6bea3dab5"},
			{2646173, "109a5e34be2d60cec56e45db3eed1eee6e7e84df99c1740fbc264acf173b29fa"},
			{2668980, "1d1e8c07574b748014f90599a980ef4a8c0ca7fd93f1f4e402d73840fef48278"},
			{2708148, "295554e95647b93f2ebf2e792f55c0eb20782e719462e8fa55d5cff8fdc331b1"},
			{2741949, "688bf22e3726e9836ae3bfd872feca05eba2559c1dabbff449e8054035a30c65"},
			{2783228, "223ca9f0668e740d0c409f0b69f54773b1013c24274e7298ebc79b7ce7f1d449"},
			{2816744, "767e05bf25ad29abfd4c9d6a4a856588971ccb605a163f97af95209fc66243bd"},
			{2851682, "ab72553fe5733fe69aa5b449abe6b31e53d69aecf12d97526d8b493965059179"},
			{2884762, "9e476c14afd69735b44f2064bcff1505d90bee4c8fff883a32deed6b9f014dac"},
			{2919005, "3690483b3f0af4412ee231750d78732a44d0ca36310bdd87915340df87b6b6bc"},
			{2961181, "20fc7674a2b4b8489ee168e812639a3fe892ffb8411d7780bc3f08dfb370f26d"},
			{2998246, "8cd31f7d18e2f39236609a52f832ea6eb1434b4332eba4024cfddffd33d8a606"},
			{3041430, "75b559976ac068784139fb9b85b0a807a3dcd3121e97490d9d49ac2e27dca311"},
			{3060713, "2776369db56d47fadbf169f6cd79a9cbbf7dfb2f625374fce228e7fac5a164b0"},
			{3116568, "a375098e8489cde902e7b5c8cf849a080bafe3e955e632d35e9e16a372be3c52"},
			{3151731, "4a631369f04c1443476fd79245465ab87fe9803666867671684cab3a621ea525"},
			{3195312, "7f90b52416a1817f17e0537e70a59620f4367a1f3eaffd83906e768052f5c3bb"},
			{3219278, "bf99c62ed93d1628bb467a87da6fcd6510eb6ad48743050edb1b71c3b12db63c"},
			{3262091, "72acfda3b0760b424a5587195ca7f716894488e0ff2d6e493aec0d5f825269a7"},
			{3303341, "57d3ca59c39f90c35b9436571e2e544182c900818d2259c2a0ab57960cbd65be"},
			{3340108, "a20954fc4dec84963c61029ce01ec26305bf2e9e5296c49fa3f219ff2c0ea4de"},
			{3372971, "370350405195cca7a16cfbd3206871285da6711c8b53ac85b6a4865c95b99dfd"},
			{3405902, "60945ee715c7096e06fa626f33539f9cf9cb6a4b96612f6d2d1bcbe1efcbb447"},
			{3442614, "0c13a082e3d87aa2d94b8bcd792a001aafc95f33f5c18c5d26ba5060ff6301e4"},
			{3476846, "f6cbb1c4830e0cf576aa653f58731caeafb162f445495e0cfde59f5134567c12"},
			{3542965, "3a39dbab097a733a2b0e068d08eb133d16b0479788a8758b557b91a346edd33b"},
			{3578093, "1a7fa38eb5a69468e72f829702f322a9d999a4b5510ab6abeadcd3a694ad40d5"},
			{3610944, "11ef938bd2b8fbd9d74bf25cb7aedc8b30b56cc1b4b964c06792af2330bcadca"},
			{3646747, "c127ab80dffb1c72c6c2c8e2d70e5426d7e78e67ac3184c717bdd3ce01e6cab6"},
			{3694335, "a3c6009b492d3d25c8a8fc59c10b9bf098ddcc856fa3aa3a1aa494871659d0ab"},
			{3724691, "66796288c3885e26c35d4a59bc1382fd6b42ab4e4e774c9b05c0f71f51d218e3"},
			{3767942, "dc07a8e37016e3d203182581dbcbdece520d86308b095dda729d455f06c47eb2"},
			{3780641, "5fbb87160e0b83737959f5b020c6ec3683fca169079e91a8a51eeab626197fd4"},
			{3814956, "59bca60c0d472dd366ab4954edd25dec6da124a93682a2a2f097cb17ae4d6261"},
			{3852634, "43b3d3306028354362990e3c39f7815259ac16d5aa21cd04e7775f1e7ce8a6e5"},
			{3893468, "bf630b21cf9cf3ee7f608a90f3904aefc984f1dea94997ebd8046c3853fd083d"},
			{3927762, "5d70ec291696f1e553cc2d648c59f30ef36e14a83dd225b108997b05b7b0c986"},
			{3936298, "3b1d2d8b68770b4a3cadf24167ead918edac61a7d541cb35e9f8b4d7228be379"},
			{3973448, "f278de163f2d0f48c1bf8b349d6235f7ed38fbbf652db64df7d2299e721afdcd"},
			{4007743, "14ed66e247409ab13208063b79a4fa32957bef6d7c0a2e87a3c407727837d0c6"},
			{4049026, "42587039038c0b14130541e3f45ce2ce316b133bdb7ce4ac0e42631478e70751"},
			{4113508, "0dc77e31d14497064a8971b7937c7deb28422d738f7d3747036d32062078fedb"},
			{4162332, "bfd791d1580b7469f50f2862a030d4af8b81ed68535e9a7f416719f5f49f0c96"},
		}},
		{"text", textInput(), "cdbef65852b548750cabe0d78eb849d3563c4296853b2fccbdc7d0ae8cefc8bd", []chunkVector{
			{0, "704d4b2234888854633e8686d48c50d5d64fdb13879e5693df4f9ba0577e88cb"},
			{38738, "a5e5405583fa6dc86ad0e3921b49089a366da9b07c61a76f0ee75e546f55eba5"},
			{73165, "4eb8f565b4b4e9a43083eab8d0026fda9b5e7bce52be3cbb01dbfde2eb537535"},
			{107166, "406f9ed616374fd748dc62364b12b6333f03f8ee1d4f45193d5e4bb4015e5b3a"},
			{154365, "c093ff45c4505f8fbb9babc720968d1ceff09fe46dec92ee4bd505c392a2d6eb"},
			{223543, "6f8716f0ec4f354609654b5888dca123ed2c1340bce0bc5b7b09c942c7478cad"},
			{269249, "c0553cb2de5add3a2521ce220688d4291b4a9f9b54d4f3ff4dd915e929acc73c"},
			{304473, "ac5244f948d8afe1e359cd3c9ff6cecb8f3f61b7100269b910b4610a35d4c4a6"},
			{320183, "648997d06550604c07bb7864b635a60bb89395fcd7bbd6b272590289bbadd797"},
			{394070, "4a5099a5ae1cef75e6643429af8335d88cb2a1ec6b118f47789298ef834342bf"},
			{438905, "ccb762184b3e09648cb1dfe6a8af2e3ca1067dbb36c986588355824683fd1240"},
			{473605, "d5f57d6453b7fcb246857fa9066c4f9ec06e74c13e8079c7b38f373338db44d8"},
			{535175, "b439301adc1afa86d9047a3e02ffa9f8df93946f81e513d73c4ff3a01e0042ba"},
			{570589, "21e22dc35789695b83977c66296da7197a130125f535b0ac2a03b5fff59743b9"},
			{627295, "5340567d80e2295dbe6f2ac1f89d18879ab21beda9aa75edd34f9eef61fa3662"},
			{713762, "4d801f1e042a161eb63ca1a0eb8e4ef3adef045e76d59a4b7bcdc3d8b0dedf6c"},
			{771765, "0d7454205e9ce3671d5fcbc6ccbb6829d18c867a2c41255815e3a14908dad2d1"},
			{817829, "9dbd1cf0e8ea79a0b39fdcdd89a9de4a2d25feeb5bfb6504736e5c1a12646de9"},
			{852871, "1b8f4e9f064fb51471376e87832c498c323980a782f2434b4af2e79caf282181"},
			{891529, "8d586f7c2b68da523f8fc8ed9563013880a3efbf77a7c2312355e590a21223a6"},
			{946967, "55396931850aca733fe3f321cc25e8a228c80857a69d5405a83a33027b8b6eba"},
			{991630, "1d222f764201afabd32ba7e94860cbcbb40fa57979531f6348352152f946da84"},
			{1052739, "d8b983534890ddfcf6ba7029f0ffc739075a80c5f673fbfc6fc10f8e72db6466"},
			{1096346, "c9724953b8b68813baa31f3b8263899085365dab9bfcba2aa11bb7619120df56"},
			{1154815, "9795c6d8e7f4c034cc5374dccaf02575530ea326d346ebcbf2fbf01ebf84ab3a"},
			{1203676, "7016934a8dafb1aab570da70b854858b6186e590628629a82736056e02f36c46"},
			{1256890, "84c7d78628242676f6dc0b5768f9566150746fa4efc9d8fc0ce4d0aad5b292ca"},
			{1302215, "02bf22888cef77786a05d9295817e77bd761d96ed763c6aa580fb894e8e37c40"},
			{1336130, "d1c3e5de19392347d3e29398058eb35c46d99f0df5c160ea418495c9c48546fe"},
			{1390387, "014d68e22a663e000d0f8270784b712d7bf5a7391e72ceb253fdce802660fa00"},
			{1455247, "050c585f2c5c61d5de119b795183cef0dbd417623fbaffe4ed508233490cdb27"},
			{1513330, "6c1b1d20a8a56690a3009640e5ce01927290ef711603c03d3a9755a0c36df494"},
			{1602066, "0e51d89b527cd35ab45cc4a52609e57469d11067933b034027359d00320f34d3"},
			{1651973, "bde0364cad97d50a41e1e38190f53e430a9a67669f6fb70168ac9295dce7533a"},
			{1690797, "5fc44e770b94816f62b0274bb209921153704f36224379168f5b6188fb854f61"},
			{1763755, "e50473541ee61e3e7383333b53c1337de32670749548001e7645bb214bec4541"},
			{1825034, "b808a4c35c85ad282fe3a805900736d25f47290da258d158d6a01c3c991b66e6"},
			{1890628, "9461823e9a16ed8f75e73c61fd561efdc2eee99f14d1fac28b33ea1278de88b3"},
			{1940739, "b5fbab159b176e9853619f8bde7285486a492a9436b6ca4c1db95a2ecc97e200"},
			{1983809, "d738fd580bfd80de4f32088e4f4f30f1df0b8346a4109c364dbd3b3bcb83e941"},
			{2025630, "6b0279716ebc84120db4a73f6911c7cd343d2af6ab86b27ab3710c83177226b0"},
			{2067089, "e016a7ca8ac8c18c65f5329ea094a2a57cc646717f33280c7dce8c49e59cd393"},
		}},
		{"empty", nil, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", []chunkVector{}},
		{"one byte", []byte{42}, "684888c0ebb17f374298b65ee2807526c066094c701bcc7ebbe1c1095f494fc1", []chunkVector{
			{0, "684888c0ebb17f374298b65ee2807526c066094c701bcc7ebbe1c1095f494fc1"},
		}},
	}
}

// chunks cuts data with p, reading through r (bytes.Reader when nil).
func chunks(t testing.TB, data []byte, p Params, r io.Reader) [][]byte {
	t.Helper()
	if r == nil {
		r = bytes.NewReader(data)
	}
	c, err := NewChunker(r, p)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		chunk, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(chunk) == 0 {
			t.Fatal("Next returned an empty chunk")
		}
		out = append(out, bytes.Clone(chunk))
	}
	return out
}

func vectorsOf(cs [][]byte) []chunkVector {
	var v []chunkVector
	off := 0
	for _, c := range cs {
		v = append(v, chunkVector{off, Sum(c).String()})
		off += len(c)
	}
	return v
}

func checkVectors(t *testing.T, in vectorInput, got [][]byte) {
	t.Helper()
	v := vectorsOf(got)
	if len(v) != len(in.chunks) {
		t.Errorf("%s: %d chunks, want %d", in.name, len(v), len(in.chunks))
	}
	for i := range min(len(v), len(in.chunks)) {
		if v[i] != in.chunks[i] {
			t.Errorf("%s: chunk %d at %d is %s, want %s at %d", in.name, i, v[i].off, v[i].id, in.chunks[i].id, in.chunks[i].off)
		}
	}
	if n := len(bytes.Join(got, nil)); n != len(in.data) {
		t.Errorf("%s: chunks add up to %d bytes, want %d", in.name, n, len(in.data))
	}
}

func TestChunkVectors(t *testing.T) {
	if DefaultParams != pinnedParams || algorithm != pinnedAlgorithm {
		t.Fatalf("chunking is %s %+v, the store's format is %s %+v", algorithm, DefaultParams, pinnedAlgorithm, pinnedParams)
	}
	for _, in := range vectorInputs() {
		if h := sha256.Sum256(in.data); hex.EncodeToString(h[:]) != in.sha256 {
			t.Fatalf("input %s changed: SHA-256 %x, want %s", in.name, h, in.sha256)
		}
		checkVectors(t, in, chunks(t, in.data, DefaultParams, nil))
	}
}

// The boundaries depend on the bytes only, not on how the reader delivers them.
func TestChunkReaders(t *testing.T) {
	for _, in := range vectorInputs() {
		for name, r := range map[string]io.Reader{
			"one byte":  iotest.OneByteReader(bytes.NewReader(in.data)),
			"half":      iotest.HalfReader(bytes.NewReader(in.data)),
			"data+EOF":  iotest.DataErrReader(bytes.NewReader(in.data)),
			"io.Reader": struct{ io.Reader }{bytes.NewReader(in.data)},
		} {
			t.Run(in.name+"/"+name, func(t *testing.T) { checkVectors(t, in, chunks(t, in.data, DefaultParams, r)) })
		}
	}
}

// Chunkers running at once share the pool of scan buffers, never a buffer.
func TestChunkConcurrent(t *testing.T) {
	inputs := vectorInputs()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 3 {
				in := inputs[(g+i)%len(inputs)]
				checkVectors(t, in, chunks(t, in.data, DefaultParams, iotest.HalfReader(bytes.NewReader(in.data))))
			}
		})
	}
	wg.Wait()
}

func TestChunkSizes(t *testing.T) {
	random, text := randomInput(), textInput()
	zeros := make([]byte, 1<<20)
	for _, p := range []Params{DefaultParams, {Min: 64, Avg: 256, Max: 1024}, {Min: 2 << 10, Avg: 8 << 10, Max: 64 << 10}, {Min: 64 << 10, Avg: 256 << 10, Max: 1 << 20}} {
		for name, data := range map[string][]byte{"random": random, "text": text, "zeros": zeros, "short": random[:p.Min+1]} {
			got := chunks(t, data, p, nil)
			if !bytes.Equal(bytes.Join(got, nil), data) {
				t.Fatalf("%+v %s: the chunks are not the input", p, name)
			}
			for i, c := range got {
				if len(c) > p.Max || (len(c) < p.Min && i < len(got)-1) {
					t.Errorf("%+v %s: chunk %d of %d has %d bytes", p, name, i, len(got), len(c))
				}
			}
			if name == "random" {
				if mean := len(data) / len(got); mean < p.Avg/2 || mean > 2*p.Avg {
					t.Errorf("%+v random: %d chunks, %d bytes on average", p, len(got), mean)
				}
			}
		}
	}
}

// An insertion moves the boundaries near it only: after the next cut point or two, the chunks
// are the old ones again, shifted.
func TestChunkInsertion(t *testing.T) {
	const at, n = 1 << 20, 100
	data := randomInput()
	ins := make([]byte, n)
	rand.NewChaCha8([32]byte{'i', 'n', 's'}).Read(ins)
	edited := slices.Concat(data[:at], ins, data[at:])

	before, after := vectorsOf(chunks(t, data, DefaultParams, nil)), vectorsOf(chunks(t, edited, DefaultParams, nil))
	old := map[string]int{}
	for _, v := range before {
		old[v.id] = v.off
	}
	var fresh []chunkVector
	for _, v := range after {
		off, ok := old[v.id]
		switch {
		case !ok:
			fresh = append(fresh, v)
		case v.off < at && off != v.off, v.off > at && off != v.off-n:
			t.Errorf("chunk %s moved from %d to %d", v.id, off, v.off)
		}
	}
	// The chunk holding the insertion changes; the cut after it may move once more.
	if len(fresh) < 1 || len(fresh) > 2 {
		t.Errorf("%d new chunks of %d after inserting %d bytes: %v", len(fresh), len(after), n, fresh)
	}
	for _, v := range fresh {
		if v.off+DefaultParams.Max < at || v.off > at+n+2*DefaultParams.Max {
			t.Errorf("new chunk at %d, far from the insertion at %d", v.off, at)
		}
	}
	t.Logf("%d chunks before, %d after, %d new", len(before), len(after), len(fresh))
}

func TestChunkEnd(t *testing.T) {
	c, err := NewChunker(bytes.NewReader(nil), DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if chunk, err := c.Next(); chunk != nil || err != io.EOF {
			t.Fatalf("empty stream: Next() = %d bytes, %v; want none, io.EOF", len(chunk), err)
		}
	}
	c, _ = NewChunker(bytes.NewReader([]byte("x")), DefaultParams)
	if chunk, err := c.Next(); string(chunk) != "x" || err != nil {
		t.Fatalf("Next() = %q, %v; want \"x\", nil", chunk, err)
	}
	for range 3 {
		if chunk, err := c.Next(); chunk != nil || err != io.EOF {
			t.Fatalf("after the last chunk: Next() = %d bytes, %v; want none, io.EOF", len(chunk), err)
		}
	}
}

func TestChunkReadError(t *testing.T) {
	boom := errors.New("boom")
	data := randomInput()
	c, err := NewChunker(io.MultiReader(bytes.NewReader(data[:1<<20]), iotest.ErrReader(boom)), DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		chunk, err := c.Next()
		if err != nil {
			if !errors.Is(err, boom) {
				t.Fatalf("after %d bytes: %v, want %v", n, err, boom)
			}
			break
		}
		n += len(chunk)
	}
	if n > 1<<20 {
		t.Errorf("%d bytes of chunks from 1 MiB of input", n)
	}
	if _, err := c.Next(); !errors.Is(err, boom) {
		t.Errorf("Next after the error: %v, want %v again", err, boom)
	}
}

func TestParamsValidate(t *testing.T) {
	for _, p := range []Params{
		{}, {Min: 32, Avg: 256, Max: 1024}, {Min: 256, Avg: 256, Max: 1024}, {Min: 64, Avg: 1024, Max: 1024},
		{Min: 64, Avg: 300, Max: 1024}, {Min: 1 << 20, Avg: 2 << 20, Max: MaxChunkSize + 1}, {Min: -1, Avg: 256, Max: 1024},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", p)
		}
		if _, err := NewChunker(bytes.NewReader(nil), p); err == nil {
			t.Errorf("NewChunker(%+v): no error", p)
		}
	}
	if err := DefaultParams.Validate(); err != nil {
		t.Error(err)
	}
}
