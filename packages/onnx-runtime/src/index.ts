export { OnnxGraph, ONNX_OPSET, type OnnxAttribute, type OnnxDim, type OnnxElementType, type OnnxTensorData } from './graph.js';
export {
  OnnxSession, resolveEncoderRuntime, onnxRuntimeUnavailable, onnxRuntimeVersion, encoderRuntimeLabel,
  ENCODER_RUNTIMES, ENCODER_RUNTIME_ENV,
  type EncoderRuntime, type EncoderRuntimeRequest, type OnnxFeed, type OnnxResult, type OnnxSessionOptions,
} from './session.js';
